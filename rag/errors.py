"""Domain errors. Each carries a one-line message meant for the person at the keyboard."""


class RagError(Exception):
    """Base class; the CLI prints the message and exits non-zero, the server maps it to a status."""


class InputError(RagError):
    """Bad input from the user: a missing path, an empty folder, an unreadable document."""


class UnsupportedTypeError(InputError):
    """A file of a type no loader reads."""


class BusyError(RagError):
    """Another build is changing the index."""


class ModelError(RagError):
    """The embedding model cannot be built or loaded."""


class IndexInvalidError(RagError):
    """The index is missing, damaged or does not match the configured model."""


class IndexMissingError(IndexInvalidError):
    """No index has been built yet."""
