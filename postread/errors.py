"""One exception hierarchy for postread; every error knows its process exit code."""

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, decided here and mapped once, in the command line."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    NO_INPUT = 3
    MODEL = 4
    DATABASE = 5
    PARTIAL = 6
    INTERRUPTED = 130


class PostreadError(Exception):
    """Base of every error postread raises on purpose."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class UsageError(PostreadError):
    """A command-line option or argument that cannot be used."""

    exit_code = ExitCode.USAGE


class InputError(PostreadError):
    """The input folder or file cannot be read at all."""

    exit_code = ExitCode.NO_INPUT


class ScanError(PostreadError):
    """One scan cannot be decoded; recorded as a failed scan, never fatal to a batch."""

    exit_code = ExitCode.PARTIAL


class ModelError(PostreadError):
    """The digit model or its card is missing, corrupt or inconsistent."""

    exit_code = ExitCode.MODEL


class DatabaseError(PostreadError):
    """The results database cannot be opened or written."""

    exit_code = ExitCode.DATABASE


class DataError(PostreadError):
    """A training or evaluation data file is missing or corrupt (pipelines only)."""

    exit_code = ExitCode.NO_INPUT
