"""Archives and compressed files: safe, parallel tar reading and streaming decompression.

* `IndexTars` / `ReadMembers` / `ReadTars` / `ExtractMembers` (`tar`): tar
  archives as `MemberRef` (uncompressed: byte ranges, shuffled and read on
  any worker) or `LoadedMember` (compressed: streamed, bytes inline) or
  `StagedMember` (compressed: streamed to scratch files).
* `DecompressFiles` / `decompress_file` (`decompress`): gzip, bzip2, xz,
  zstd and deflate files, copied in chunks under a size cap.
* `UniqueOutputs`, `atomic_create`, `safe_relative_path` (`outputs`): writing
  under an output prefix, never outside it, never a half-written file.
"""

from __future__ import annotations

from datathon_etl.framework.archives._source import (
    ArchiveChangedError,
    ArchiveHandles,
    SourceReadError,
)
from datathon_etl.framework.archives.decompress import (
    COMPRESSIONS,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    CompressedFileError,
    DecompressedFile,
    DecompressFiles,
    DecompressJob,
    DecompressResult,
    decompress_file,
    detect_compression,
    open_decompressed,
)
from datathon_etl.framework.archives.outputs import (
    OutputWriteError,
    UniqueOutputs,
    UniqueOutputsResult,
    UnsafePathError,
    atomic_create,
    commit,
    output_path,
    safe_relative_path,
    staged_file,
)
from datathon_etl.framework.archives.tar import (
    ARCHIVE_REASONS,
    DEFAULT_MAX_MEMBER_BYTES,
    LOADED_TAG,
    SUMMARY_TAG,
    ArchiveSummary,
    ExtractMembers,
    ExtractResult,
    IndexTars,
    LoadedMember,
    MemberRef,
    ReadMembers,
    ReadTars,
    StagedMember,
    TarContents,
    TarIndex,
    read_member,
    scan_tar,
    tar_compression,
)

__all__ = [
    "ARCHIVE_REASONS",
    "COMPRESSIONS",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "DEFAULT_MAX_MEMBER_BYTES",
    "LOADED_TAG",
    "SUMMARY_TAG",
    "ArchiveChangedError",
    "ArchiveHandles",
    "ArchiveSummary",
    "CompressedFileError",
    "DecompressFiles",
    "DecompressJob",
    "DecompressResult",
    "DecompressedFile",
    "ExtractMembers",
    "ExtractResult",
    "IndexTars",
    "LoadedMember",
    "MemberRef",
    "OutputWriteError",
    "ReadMembers",
    "ReadTars",
    "SourceReadError",
    "StagedMember",
    "TarContents",
    "TarIndex",
    "UniqueOutputs",
    "UniqueOutputsResult",
    "UnsafePathError",
    "atomic_create",
    "commit",
    "decompress_file",
    "detect_compression",
    "open_decompressed",
    "output_path",
    "read_member",
    "safe_relative_path",
    "scan_tar",
    "staged_file",
    "tar_compression",
]
