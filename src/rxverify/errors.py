"""Errors a user can cause: each is one clear line and exit code 2."""


class UserError(Exception):
    """Bad input: malformed contract or config, unknown target, unreachable platform, ...

    The command line prints `rxverify: <message>` and exits 2; never a traceback.
    """

    exit_code = 2
