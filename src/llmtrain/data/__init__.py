"""Data: the prepared-data format (`shards`: manifest, token shards, readers and checks), the
offline preparation pipeline (`prepare`) and the built-in demo corpus (`builtin`)."""

from llmtrain.data.shards import open_split, read_manifest, shard_dtype, verify_shards

__all__ = ["open_split", "read_manifest", "shard_dtype", "verify_shards"]
