"""postread: read handwritten recipient postal codes from envelope scans."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("postread")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
