"""postread: read handwritten recipient postal codes from envelope scans."""


def __getattr__(name: str) -> str:
    # The version is looked up only when asked for: importlib.metadata costs ~35 ms at
    # import, paid by every run and every worker process otherwise.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("postread")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0.0.0+unknown"
    raise AttributeError(f"module 'postread' has no attribute {name!r}")
