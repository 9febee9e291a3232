"""Domain errors. Each carries a one-line message meant for the person at the keyboard."""


class RagError(Exception):
    """Base class; the CLI prints the message and exits non-zero, the server maps it to a status."""


class InputError(RagError):
    """Bad input from the user: a missing path, an empty folder, an unreadable document."""


class UnsupportedTypeError(InputError):
    """A file of a type no loader reads."""


class NotFoundError(InputError):
    """No document has the id asked for."""


class BusyError(RagError):
    """Another build is changing the index."""


class StorageError(RagError):
    """The disk of the index folder refused a write: it is full, or read-only. Nothing changed."""


class ModelError(RagError):
    """The embedding model cannot be built or loaded."""


class IndexInvalidError(RagError):
    """The index is missing, damaged or does not match the configured model."""


class IndexMissingError(IndexInvalidError):
    """No index has been built yet."""


class IndexDamagedError(IndexInvalidError):
    """A file of the index in use changed or became unreadable after it was verified and loaded:
    answers from it stop until a good index is live again."""

    def __init__(self, message: str, generation: str):
        super().__init__(message)
        self.generation = generation  # the folder of the damaged index, e.g. gen-000007-20261123T191508Z
