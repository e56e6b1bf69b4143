"""The kinds of datastore: what differs between a local folder, an Azure Blob container and an
S3 bucket, behind one small interface chosen by the kind's name stored in the catalog
(``STORAGE_KINDS[kind]``). Everything else (registration, secrets, paths, copying) is the same
code for every kind in ``datastore.py``, through fsspec.

Adding a kind is adding a class here (its root URL, its fsspec options, what ``show`` says
when it has no credentials) and a ``Datastore.register_*`` for its arguments.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from parallelrun.data import remote
from parallelrun.errors import StorageError

if TYPE_CHECKING:
    from parallelrun.workspace.datastore import Datastore
    from parallelrun.workspace.workspace import Workspace


class StorageKind:
    """A remote kind; :class:`LocalFolder` overrides what differs for a folder on disk."""

    name: str                            # as stored in the catalog
    datastore_type: str                  # Azure ML's name for it
    remote = True

    def root_url(self, store: "Datastore") -> str:
        raise NotImplementedError

    def storage_options(self, store: "Datastore") -> dict:
        """fsspec options for the datastore's URLs, secrets included (resolved now)."""
        raise NotImplementedError

    def location(self, store: "Datastore") -> str:
        """Where the storage is, without secrets: what tells apart two datastores whose root
        URLs are the same (a container of one name on two accounts)."""
        raise NotImplementedError

    def default_credentials(self, config: dict) -> dict:
        """What ``describe()`` shows for a datastore registered without credentials."""
        return {}

    def shown_config(self, store: "Datastore") -> dict:
        return {k: v for k, v in store.config.items() if v is not None}

    def check(self, store: "Datastore", create: bool) -> None:
        """Reach the storage now, so a wrong name or credential fails at registration."""
        options = store.storage_options
        fs, root = remote.filesystem(store.root_url, options)
        root = root.rstrip("/")
        missing = remote._missing_root_error(store.root_url, root, options)
        if missing is None:
            return
        if create and "does not exist" in str(missing):
            try:
                fs.mkdir(root)
            except Exception as exc:  # noqa: BLE001
                raise remote.storage_error(exc, store.root_url, "creating") from None
            return
        raise StorageError(f"registering datastore {store.name!r}: {missing}") from None


class LocalFolder(StorageKind):
    name, datastore_type, remote = "local", "LocalFolder", False

    def root_url(self, store: "Datastore") -> str:
        return store.path_on_disk.rstrip(os.sep) + os.sep

    def storage_options(self, store: "Datastore") -> dict:
        return {}

    def location(self, store: "Datastore") -> str:
        return store.path_on_disk

    def shown_config(self, store: "Datastore") -> dict:
        return {**super().shown_config(store), "path": store.path_on_disk}

    def check(self, store: "Datastore", create: bool) -> None:
        if os.path.isdir(store.path_on_disk):
            return
        if create:
            os.makedirs(store.path_on_disk, exist_ok=True)
            return
        raise StorageError(f"local datastore {store.name!r}: folder {store.path_on_disk!r} does "
                           "not exist; create it or pass create_if_not_exists=True")


class AzureBlob(StorageKind):
    name, datastore_type = "azure_blob", "AzureBlob"

    def root_url(self, store: "Datastore") -> str:
        return f"az://{store.config['container_name']}/"

    def storage_options(self, store: "Datastore") -> dict:
        # adlfs would otherwise take a container whose properties it cannot read (wrong key)
        # for an existing one, and the error would surface later as an unrelated one
        return {**_azure_credentials(store.config, store._secrets()),
                "assume_container_exists": False}

    def location(self, store: "Datastore") -> str:
        config = store.config
        account = _account_url(config) or (
            f"https://{config['account_name']}.blob.core.windows.net" if config.get("account_name")
            # the account is only in the connection string (a secret): this datastore's own
            else f"the connection string of datastore {store.name!r}")
        return f"{account}/{config['container_name']}"

    def default_credentials(self, config: dict) -> dict:
        return {"anonymous": "public container"}


class S3(StorageKind):
    name, datastore_type = "s3", "AmazonS3"

    def root_url(self, store: "Datastore") -> str:
        return f"s3://{store.config['bucket']}/"

    def storage_options(self, store: "Datastore") -> dict:
        return _s3_options(store.config, store._secrets())

    def location(self, store: "Datastore") -> str:
        endpoint = (store.config.get("endpoint_url") or "https://s3.amazonaws.com").rstrip("/")
        return f"{endpoint}/{store.config['bucket']}"

    def default_credentials(self, config: dict) -> dict:
        if config.get("anonymous"):
            return {"anonymous": "public bucket"}
        return {"default": "boto's lookup (AWS_* variables, ~/.aws)"}


#: kind name (the catalog's ``datastores.kind``) -> its StorageKind
STORAGE_KINDS: dict[str, StorageKind] = {kind.name: kind() for kind in (LocalFolder, AzureBlob, S3)}


def local_root(workspace: "Workspace", path: str) -> str:
    """A local datastore's folder: relative paths are below the workspace folder."""
    return path if os.path.isabs(path) else os.path.join(workspace.path, path)


def _account_url(config: dict) -> str | None:
    if config.get("account_url"):
        return config["account_url"].rstrip("/")
    endpoint, protocol = config.get("endpoint") or "core.windows.net", config.get("protocol") or "https"
    account = config.get("account_name")
    if endpoint == "core.windows.net" and protocol == "https":
        return None  # adlfs's default: https://<account>.blob.core.windows.net
    host = endpoint.split(":")[0]
    if ":" in endpoint or host == "localhost" or re.match(r"^\d+\.\d+\.\d+\.\d+$", host):
        return f"{protocol}://{endpoint}/{account}"  # emulators use path-style URLs
    return f"{protocol}://{account}.blob.{endpoint}"


def _azure_credentials(config: dict, secrets: dict) -> dict:
    if secrets.get("connection_string"):
        return {"connection_string": secrets["connection_string"]}
    account_url = _account_url(config)
    account = config.get("account_name")
    if account_url is not None:
        # adlfs reaches non-default endpoints (emulators, other clouds) by connection string
        parts = [f"BlobEndpoint={account_url}"]
        if secrets.get("account_key"):
            parts += [f"AccountName={account}", f"AccountKey={secrets['account_key']}"]
        elif secrets.get("sas_token"):
            parts.append(f"SharedAccessSignature={secrets['sas_token'].lstrip('?')}")
        return {"connection_string": ";".join(parts) + ";",
                **({} if secrets else {"anon": True})}
    options: dict[str, Any] = {"account_name": account}
    if secrets.get("account_key"):
        options["account_key"] = secrets["account_key"]
    elif secrets.get("sas_token"):
        options["sas_token"] = secrets["sas_token"]
    else:
        options["anon"] = True
    return options


def _s3_options(config: dict, secrets: dict) -> dict:
    options: dict[str, Any] = {}
    if config.get("endpoint_url"):
        options["endpoint_url"] = config["endpoint_url"]
    if config.get("region"):
        options["client_kwargs"] = {"region_name": config["region"]}
    if config.get("anonymous"):
        options["anon"] = True
    if secrets.get("access_key_id"):
        options["key"] = secrets["access_key_id"]
    if secrets.get("secret_access_key"):
        options["secret"] = secrets["secret_access_key"]
    if secrets.get("session_token"):
        options["token"] = secrets["session_token"]
    return options
