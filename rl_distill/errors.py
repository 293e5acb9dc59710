"""User-facing errors: the CLI prints these as one line and exits non-zero, never a traceback."""


class UserError(Exception):
    """A problem with what the user asked for (bad id, bad file, mismatched spaces)."""


class UnknownEnvError(UserError):
    """The env id is not one rl-distill can build."""


class TeacherError(UserError):
    """A teacher id, file or checkpoint that cannot be loaded."""


class SpaceMismatchError(UserError):
    """A teacher (or student) whose observation or action space does not fit the env."""
