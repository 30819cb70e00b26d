"""The one type map and what derives from it: collection specs (spec), row conversion (convert), digests (digest).

Nothing is imported here: `milvusdiff.types.spec` is read by the compare path, which must not pay for
pymilvus, or for the digest's DuckDB when it does not use it.
"""
