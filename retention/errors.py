"""One exception type per kind of user error.

Each is raised with a message that names the file, key or value at fault and says
what to do. Scripts turn them into one line on stderr and a non-zero exit.
"""


class RetentionError(Exception):
    """Base class of every user-facing error of this package."""


class ConfigError(RetentionError):
    """The configuration has a wrong type, an unknown key or an unknown value."""


class ArgumentError(RetentionError):
    """A script's command-line argument is wrong: an output with a suffix the script does
    not write, an output folder that is a file."""


class DataError(RetentionError):
    """A dataset, manifest, image, traces file or table is missing, truncated, unreadable
    or malformed."""


class DownloadError(RetentionError):
    """A download failed, was truncated, or its checksum did not match."""


class WeightsError(RetentionError):
    """Pretrained weights are missing or do not fit the model."""


class TrainingError(RetentionError):
    """Training diverged (NaN or infinite loss) or cannot continue."""


class StorageError(RetentionError):
    """A file or folder could not be written or read: no space left, permission denied,
    a read-only filesystem. The message names the path and the free space there."""
