"""Running a run as its owner's Unix account (a server started as root for many users).

The supervisor stays root: it alone writes the run's records, in a run folder that only root
may write to (0711: the owner passes through it, nobody lists it). Before the run's code
starts, the supervisor hands the owner what is theirs (`hand_over`: the working copy of the
orchestration, its arguments, a notebook's output copy, all private to them), and the run's
process drops to the owner's uid, gid and groups, with the owner's home and names in its
environment (`drop`, `environment`). An owner with no account, or whose account is root's, is
an error that fails the run with its reason: a run never executes as root for someone else.

Standard library only, and only built-in modules (`pwd`, `os`), like `supervise`.
"""

from __future__ import annotations

import os
import pwd

TYPE_CHECKING = False  # see `supervise`: `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Iterable


class AccountError(OSError):
    """The run's owner cannot run it: no such account, or a privileged one."""


class Account:
    """A Unix account to run as."""

    __slots__ = ("gid", "groups", "home", "name", "shell", "uid")

    def __init__(self, entry: pwd.struct_passwd, groups: list[int]) -> None:
        self.name, self.uid, self.gid = entry.pw_name, entry.pw_uid, entry.pw_gid
        self.home, self.shell = entry.pw_dir, entry.pw_shell or "/bin/sh"
        self.groups = groups


def lookup(name: str) -> Account:
    """The account of the user `name`; AccountError if there is none or it is root's."""
    try:
        entry = pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise AccountError(
            f"the run's owner {name!r} has no Unix account here, and runs execute as their owner"
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise AccountError(f"the run's owner {name!r} is a root account: refused")
    return Account(entry, [g for g in os.getgrouplist(name, entry.pw_gid) if g != 0])


def environment(account: Account, env: dict[str, str]) -> dict[str, str]:
    """The run's environment with the owner's home and names."""
    return {
        **env,
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "SHELL": account.shell,
    }


def close_run_folder(run_dir: str) -> None:
    """The run's folder: root's, which others may pass through but not list or write."""
    os.chown(run_dir, 0, 0)
    os.chmod(run_dir, 0o711)


def hand_over(account: Account, tree: str, files: Iterable[str]) -> None:
    """Give the owner a folder tree (each folder 0700) and files (each 0600, created empty
    when missing): theirs alone. Links are not followed (the tree is a fresh copy)."""
    for folder, dirs, names in os.walk(tree):
        os.chown(folder, account.uid, account.gid, follow_symlinks=False)
        os.chmod(folder, 0o700)
        for name in [*dirs, *names]:
            path = os.path.join(folder, name)
            os.chown(path, account.uid, account.gid, follow_symlinks=False)
            if not os.path.islink(path) and not os.path.isdir(path):
                os.chmod(path, os.stat(path).st_mode & 0o700)
    for path in files:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.fchown(fd, account.uid, account.gid)
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)


def drop(account: Account) -> None:
    """In the run's process, before its code: become the owner for good (groups, gid, uid)."""
    os.setgroups(account.groups)
    os.setgid(account.gid)
    os.setuid(account.uid)
    if os.getuid() != account.uid or os.geteuid() != account.uid or os.getegid() != account.gid:
        raise AccountError(f"could not become {account.name!r}")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise AccountError(f"became {account.name!r} but could still regain root")
