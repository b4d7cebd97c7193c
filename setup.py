"""Maps the top-level folders into the one `datathon_etl` import namespace.

The repository keeps `framework/`, `datasets/`, `codegen/` and `generated/` at
its top level; installed, they become `datathon_etl.framework` and so on, so
nothing named `datasets` or `framework` lands at the top of site-packages.
"""

from setuptools import find_packages, setup

ROOTS = ("framework", "datasets", "codegen", "generated")

package_dir = {f"datathon_etl.{root}": root for root in ROOTS}
packages = [
    f"datathon_etl.{root}{'.' + sub if sub else ''}"
    for root in ROOTS
    for sub in ["", *find_packages(root)]
]

setup(
    package_dir=package_dir,
    packages=packages,
    package_data={"": ["*.json", "*.md", "templates/*.j2"]},
    include_package_data=True,
)
