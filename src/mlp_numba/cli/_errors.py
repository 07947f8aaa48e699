"""How the command line reports problems: the error the subcommands raise and the exit codes."""

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a process stopped by SIGINT


class UserError(Exception):
    """A problem with what the user asked for, reported as one line."""
