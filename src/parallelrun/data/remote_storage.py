"""How parallelrun reaches remote storage: fsspec filesystems, the credentials they use, and
the errors they raise, for every remote job (listing, copying trees, the workers' fetches).

* :func:`filesystem` opens the fsspec filesystem of a URL with its storage options; a missing
  package names the parallelrun extra that installs it.
* The storage-options registry (:func:`register_storage_options`) lends a datastore's
  credentials to plain URL strings under its container or bucket, and refuses a URL that two
  storage locations share.
* :func:`storage_error` translates a storage library's exception into a
  :class:`~parallelrun.errors.StorageError` that says what to fix, with secrets hidden
  (:func:`redact`); :func:`_missing_root_error` names the containers or buckets that exist
  when the one a URL names does not.

Separate from the jobs that use it (``remote_listing``, ``remote_trees``, ``remote_cache``):
every one of them needs it, and it is where credentials are handled, so their rules live in
one place. Callers import these names from :mod:`parallelrun.data.remote`.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from parallelrun.data.urls import split_url
from parallelrun.errors import StorageError

#: URL scheme -> the parallelrun extra that installs its fsspec implementation
EXTRAS = {"az": "azure", "abfs": "azure", "abfss": "azure", "s3": "s3", "s3a": "s3"}


# Storage options registered for URL prefixes -----------------------------------------------------
# Datastore paths carry their options (DataPath.storage_options, a dataset's sources, each
# payload); a plain URL string (`parallelrun run --input az://...`, a dataset registered from
# a URL) finds them here. Such a URL names a container or bucket but not the account or
# endpoint, so each entry also says where its storage is (its *location*: account URL or
# endpoint, and container or bucket): two accounts with a container of one name are two
# locations, and a URL under both is refused as ambiguous, never read with either's
# credentials. Entries are kept per owner (a datastore), so registering it again replaces its own.
class _Registration(NamedTuple):
    prefix: str
    location: str
    options: Any            # a dict, or a callable returning one when used
    name: str               # what an error calls it ("datastore 'mnist'")
    hint: str               # how to name this storage without ambiguity ("{path}" for the rest)


_REGISTERED: dict[str, _Registration] = {}  # owner -> its registration, latest last


def register_storage_options(prefix: str, options: Any, *, location: str | None = None,
                             owner: str | None = None, name: str | None = None,
                             hint: str = "") -> None:
    """Use ``options`` (a dict, or a callable returning one at use) for URLs under ``prefix``.

    ``location`` says where the storage is (``http://127.0.0.1:10000/devstoreaccount1/data``);
    the default, ``prefix``, treats every registration of one prefix as the same storage.
    ``owner`` identifies who registers (a datastore of a workspace), so registering again
    replaces its entry; ``name`` is what errors call it and ``hint`` what an ambiguity error
    offers instead of the plain URL (``{path}`` stands for the URL's rest below ``prefix``).

    Example: ``register_storage_options("az://sampledata/", lambda: {"account_name": ...},
    location="https://pipelinedata.blob.core.windows.net/sampledata")``.
    """
    prefix = prefix.rstrip("/") + "/"
    location = location or prefix
    owner = owner or f"{prefix} at {location}"
    _REGISTERED.pop(owner, None)
    _REGISTERED[owner] = _Registration(prefix, location, options, name or prefix, hint)


def forget_storage_options(owner: str) -> None:
    """Drop what ``owner`` registered (a datastore that was unregistered)."""
    _REGISTERED.pop(owner, None)


def registered_storage_options(url: str) -> dict | None:
    """Options registered for the longest prefix of ``url``, or None.

    A :class:`~parallelrun.errors.StorageError` when that prefix belongs to two locations (a
    container of that name on two accounts): the URL alone cannot say whose credentials apply.
    """
    under = [entry for entry in _REGISTERED.values() if (url + "/").startswith(entry.prefix)]
    if not under:
        return None
    longest = max(len(entry.prefix) for entry in under)
    # one entry per location, the latest registered (same storage, newest credentials)
    by_location = {entry.location: entry for entry in under if len(entry.prefix) == longest}
    if len(by_location) > 1:
        rest = url[longest:]
        where = ", ".join(f"{entry.name} ({entry.location})" for entry in by_location.values())
        fixes = "; ".join(entry.hint.replace("{path}", rest) for entry in by_location.values()
                          if entry.hint)
        raise StorageError(f"{url!r} is under {len(by_location)} storage locations: {where}. A "
                           "plain URL names the container or bucket but not the account or "
                           f"endpoint; name the datastore instead{': ' + fixes if fixes else ''}")
    options = next(iter(by_location.values())).options
    return dict(options() if callable(options) else options)


def filesystem(url: str, storage_options: dict | None = None):
    """The fsspec filesystem for ``url`` (and the path without its scheme).

    Listings are never cached: a listing must show the data as it is now (dataset fingerprints,
    outputs written by earlier steps).
    """
    import fsspec

    scheme, path = split_url(url)
    options = storage_options if storage_options is not None else registered_storage_options(url)
    options = {"use_listings_cache": False, **(options or {})}
    if scheme == "file":
        options["auto_mkdir"] = True  # as object stores do: writing a file makes its folders
    try:
        return fsspec.filesystem(scheme, **options), path
    except ImportError as exc:
        extra = EXTRAS.get(scheme)
        hint = f"pip install 'parallelrun[{extra}]'" if extra else f"install the fsspec " \
            f"implementation of {scheme}://"
        raise StorageError(f"reading {url!r} needs a package that is not installed "
                           f"({exc.name or exc}); {hint}") from exc
    except ValueError as exc:
        # e.g. adlfs: no account name or connection string
        raise StorageError(f"cannot connect to {url!r}: {redact(str(exc))}. Register a datastore "
                           "with its credentials and use datastore.path(...)") from None


_SECRET_IN_TEXT = re.compile(
    r"(AccountKey|SharedAccessSignature|sig|secret_access_key|SecretAccessKey|key|secret|token)"
    r"(=|': '|\": \")([^;&\s'\"]+)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with values of secret-looking fields (``AccountKey=``, ``sig=``...) hidden:
    libraries echo connection strings and signed URLs in their error messages."""
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def storage_error(exc: BaseException, url: str, action: str) -> StorageError:
    """Translate a storage library's exception into a StorageError that says what to fix.

    Raise it ``from None``: the library's own message may hold a signed URL or a connection
    string, and a chained traceback would print it (into the job's error logs, too).
    """
    if isinstance(exc, StorageError):
        return exc
    text = redact(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
    status = code = None
    cause: BaseException | None = exc
    for _ in range(5):  # libraries wrap the service's error (adlfs: ValueError from ...)
        if cause is None:
            break
        status = status or getattr(cause, "status_code", None) or _s3_status(cause)
        code = code or getattr(cause, "error_code", None) or _s3_code(cause)
        cause = cause.__cause__ or cause.__context__
    code = getattr(code, "value", code)  # azure's StorageErrorCode enum
    auth_codes = {"AuthenticationFailed", "AuthorizationFailure", "InvalidAccessKeyId",
                  "SignatureDoesNotMatch", "AccessDenied", "InvalidAuthenticationInfo",
                  "AuthorizationPermissionMismatch", "ExpiredToken", "InvalidToken"}
    if isinstance(exc, PermissionError) or status in (401, 403) or str(code) in auth_codes \
            or type(exc).__name__ == "ClientAuthenticationError":
        owners = sorted({entry.name for entry in _REGISTERED.values()
                         if (url + "/").startswith(entry.prefix)})
        whose = " or ".join(owners) if owners else "the datastore"
        return StorageError(f"{action} {url!r}: the storage refused the credentials ({code or text}). "
                            f"Check the account key / SAS token / access keys of {whose} (or "
                            "the environment variable it reads them from) and register it again "
                            "with overwrite=True")
    if isinstance(exc, FileNotFoundError):
        return StorageError(f"{action} {url!r}: not found ({text})")
    if isinstance(exc, (ConnectionError, TimeoutError)) or "connect" in text.lower():
        return StorageError(f"{action} {url!r}: cannot reach the storage service ({text}); check "
                            "the endpoint and the network")
    return StorageError(f"{action} {url!r} failed: {type(exc).__name__}: {text}")


def _s3_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def _s3_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        return _s3_code(cause)
    return None


def _missing_root_error(url: str, path: str, storage_options: dict | None) -> StorageError | None:
    """A clear error when the container/bucket itself is missing (naming those that exist);
    None when it exists. Refused credentials raise their own StorageError."""
    import fsspec

    scheme = split_url(url)[0]
    root = path.split("/", 1)[0]
    what = "container" if scheme in ("az", "abfs", "abfss") else "bucket"
    fs, _ = filesystem(url, storage_options)
    try:
        if fs.exists(root):  # one cheap request on the usual path
            return None
    except Exception:  # noqa: BLE001 - e.g. a container SAS may list blobs but not read properties
        pass
    try:
        # s3fs answers False for refused credentials too: a listing tells them apart
        fs.ls(root, detail=False)
        return None
    except FileNotFoundError:
        pass
    except Exception as check:  # noqa: BLE001 - credentials refused etc.
        return storage_error(check, url, "listing")
    options = storage_options if storage_options is not None else registered_storage_options(url)
    try:
        # a listing of the account's containers/buckets (adlfs lists them only with its cache on)
        lister = fsspec.filesystem(scheme, skip_instance_cache=True, **(options or {}))
        roots = sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in lister.ls("", detail=False))
        there = ", ".join(roots) or "none"
    except Exception:  # noqa: BLE001 - listing containers may need more rights than reading one
        there = "unknown (the credentials cannot list them)"
    return StorageError(f"{what} {root!r} of {url!r} does not exist ({what}s there: {there}); "
                        f"create it or fix the datastore's {what} name")
