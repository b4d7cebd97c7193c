"""Dataset declarations: one package per data set, no Beam code in them."""

BUILTIN = (
    "datathon_etl.datasets.mimic_cxr",
    "datathon_etl.datasets.mimic_cxr_jpg",
    "datathon_etl.datasets.mimic_cxr_dicom",
    "datathon_etl.datasets.nih_cxr14",
    "datathon_etl.datasets.chexpert",
)
"""Import paths of the datasets that ship with datathon-etl (codegen's default)."""
