"""Publishing function versions, naming them with aliases, and finding the one a qualifier means.

A version is a function's code (a bundle in the blob store) and configuration. Publishing the
same code and configuration again returns the version they already are; anything else gets the
next number. ``$LATEST`` is the version published last (so publishing version 1's code again,
a roll-back, makes it ``$LATEST`` again), kept as an alias no user alias can be named; a number
is that version; any other qualifier is an alias. A function with no versions at all (one run in-process, say) runs whatever code
its process has, under ``$LATEST`` only.
"""

from __future__ import annotations

import re

from perdure.errors import ConflictError, InvalidParameterError, NotFoundError
from perdure.protocol.versions import LATEST, Alias, FunctionConfig, FunctionVersion
from perdure.store.base import Transaction

# Lambda's alias names: letters, digits, - and _, not all digits (those are versions).
_ALIAS = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}")
# Two servers publishing at once may both take the same next number: the second tries again.
_PUBLISH_ATTEMPTS = 5


class VersionNotFoundError(NotFoundError):
    """A qualifier names no version or alias of the function."""

    def __init__(self, function_name: str, qualifier: str, versions: list[int], aliases: list[str]) -> None:
        known = [*(str(v) for v in versions), *aliases]
        listing = ", ".join(known) if known else "none yet"
        super().__init__(
            f"Function not found: {function_name}:{qualifier}. {function_name} has no version or alias "
            f"{qualifier!r}; its versions and aliases: {listing}. Use one of them, or $LATEST for the newest."
        )


def publish(tx: Transaction, function_name: str, code_key: str, config: FunctionConfig, now: float) -> FunctionVersion:
    """The version of this code and configuration: the existing one, or a new one numbered next."""
    digest = config.digest(code_key)
    for _ in range(_PUBLISH_ATTEMPTS):
        version = tx.find_version(function_name, digest)
        if version is None:
            highest = tx.latest_version(function_name)
            version = FunctionVersion(function_name, (highest.version if highest else 0) + 1, code_key, config, now)
            if not tx.insert_version(version, digest):
                continue
        tx.put_alias(Alias(function_name, LATEST, version.version))
        return version
    raise RuntimeError(f"Publishing a version of {function_name} lost {_PUBLISH_ATTEMPTS} races in a row to other servers.")


def resolve(tx: Transaction, function_name: str, qualifier: str) -> FunctionVersion | None:
    """The version ``qualifier`` means; None for ``$LATEST`` of a function that has no versions.

    Raises ``VersionNotFoundError`` for a number or alias the function does not have.
    """
    if qualifier == LATEST:
        return current(tx, function_name)
    if qualifier.isdigit():
        found = tx.get_version(function_name, int(qualifier))
    else:
        alias = tx.get_alias(function_name, qualifier)
        found = tx.get_version(function_name, alias.version) if alias else None
    if found is None:
        versions = [v.version for v in tx.list_versions(function_name)]
        raise VersionNotFoundError(function_name, qualifier, versions, [a.name for a in aliases(tx, function_name)])
    return found


def current(tx: Transaction, function_name: str) -> FunctionVersion | None:
    """``$LATEST``: the version published last (the highest, if that one was deleted); None without versions."""
    pointer = tx.get_alias(function_name, LATEST)
    found = tx.get_version(function_name, pointer.version) if pointer else None
    return found or tx.latest_version(function_name)


def aliases(tx: Transaction, function_name: str) -> list[Alias]:
    """The function's aliases, by name (``$LATEST`` is not one of them)."""
    return [alias for alias in tx.list_aliases(function_name) if alias.name != LATEST]


class FunctionInUseError(ConflictError):
    """A function or version that unfinished executions still run cannot be deleted."""

    def __init__(self, what: str, unfinished: int) -> None:
        super().__init__(
            f"Cannot delete {what}: {unfinished} execution(s) of it have not ended and run its code. "
            "Let them finish, or stop them (`perdure executions stop ARN`), then delete it."
        )


def delete(tx: Transaction, function_name: str, version: int | None) -> None:
    """Deletes one version of a function, or (``version`` None) all of them with its aliases.

    Refused with ``FunctionInUseError`` while an execution that has not ended runs what would go.
    """
    unfinished = tx.unfinished_by_version(function_name)
    if version is None:
        if sum(unfinished.values()):
            raise FunctionInUseError(function_name, sum(unfinished.values()))
        for published in tx.list_versions(function_name):
            tx.delete_version(function_name, published.version)
        return
    if tx.get_version(function_name, version) is None:
        raise VersionNotFoundError(function_name, str(version), [v.version for v in tx.list_versions(function_name)], [])
    if unfinished.get(version):
        raise FunctionInUseError(f"version {version} of {function_name}", unfinished[version])
    tx.delete_version(function_name, version)


def purge_unused(tx: Transaction, before: float, dry_run: bool = False) -> tuple[list[FunctionVersion], list[str]]:
    """Deletes the versions published before ``before`` that nothing needs any more (a dry run only finds them).

    A version is kept while it is ``$LATEST``, an alias names it, or an execution still in the
    store runs or ran it (restarting that one needs its code). Returns the versions deleted and
    the keys of the bundles no version has any more, for the caller to delete once committed.
    """
    purged: list[FunctionVersion] = []
    for function_name in tx.versioned_functions():
        latest = current(tx, function_name)
        kept = {alias.version for alias in tx.list_aliases(function_name)} | tx.referenced_versions(function_name)
        for version in tx.list_versions(function_name):
            if version.created_time < before and version != latest and version.version not in kept:
                if not dry_run:
                    tx.delete_version(function_name, version.version)
                purged.append(version)
    unused = sorted({version.code_key for version in purged if dry_run or not tx.code_in_use(version.code_key)})
    return purged, unused


def put_alias(tx: Transaction, function_name: str, name: str, version: int) -> Alias:
    """Points alias ``name`` at ``version`` (made, or moved if it exists)."""
    if not _ALIAS.fullmatch(name):
        raise InvalidParameterError(
            f"Invalid alias name {name!r}: use 1 to 128 letters, digits, - and _, not only digits (those name versions)."
        )
    if tx.get_version(function_name, version) is None:
        raise VersionNotFoundError(function_name, str(version), [v.version for v in tx.list_versions(function_name)], [])
    alias = Alias(function_name, name, version)
    tx.put_alias(alias)
    return alias
