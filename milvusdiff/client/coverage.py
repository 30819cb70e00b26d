"""Which MilvusClient methods the ShadowClient mirrors, which it refuses, and which change nothing it keeps.

The promise is that every write is mirrored; a method that changes rows or schema and cannot be mirrored
exactly is refused before Milvus is touched. tests/test_shadow_coverage.py classifies every public method
of the installed pymilvus against these three sets, so a pymilvus release that adds a method fails the
suite until someone decides where it belongs.
"""

from __future__ import annotations

# Overridden by ShadowClient: each goes through the journaled write protocol (or, for the database
# selection, is followed by every later call).
MIRRORED = frozenset(
    {
        "create_collection",
        "drop_collection",
        "rename_collection",
        "truncate_collection",
        "create_partition",
        "drop_partition",
        "insert",
        "upsert",
        "delete",
        "create_alias",
        "alter_alias",
        "drop_alias",
        "drop_database",
    }
)

# Refused with ShadowUnsupportedError before Milvus is called: method -> why.
REFUSED: dict[str, str] = {
    "add_collection_field": "existing rows would take the new field in Milvus; the shadow cannot follow "
    "schema changes yet",
    "add_collection_struct_field": "a schema change the shadow cannot follow yet",
    "alter_collection_field": "a field's properties change the schema the shadow was created with",
    "drop_collection_field": "dropping a field changes every row; the shadow cannot follow schema changes yet",
    "add_function_field": "a function field computes values for rows the shadow never saw written",
    "drop_function_field": "a schema change the shadow cannot follow yet",
    "add_collection_function": "a function writes output fields the shadow never saw written",
    "alter_collection_function": "a function writes output fields the shadow never saw written",
    "drop_collection_function": "a schema change the shadow cannot follow yet",
    "restore_snapshot": "restoring puts rows into Milvus that were never written through the ShadowClient",
    "refresh_external_collection": "an external collection's rows come from outside the ShadowClient",
    "update_replicate_configuration": "replication writes rows into this cluster behind the ShadowClient's back",
}

# Change no row and no field the shadow keeps: reads, indexes, loading, flush and compaction, users and
# roles, resource groups, snapshots taken (not restored). `use_database` / `using_database` select the
# database later calls go to, and the ShadowClient follows that selection on every call.
# `alter_collection_properties` passes through except for a TTL, which the ShadowClient refuses.
PASS_THROUGH = frozenset(
    {
        "add_file_resource",
        "add_privileges_to_group",
        "alter_collection_properties",
        "alter_database_properties",
        "alter_index_properties",
        "alter_role",
        "close",
        "compact",
        "create_database",
        "create_field_schema",
        "create_index",
        "create_privilege_group",
        "create_resource_group",
        "create_role",
        "create_schema",
        "create_snapshot",
        "create_struct_field_schema",
        "create_user",
        "describe_alias",
        "describe_collection",
        "describe_database",
        "describe_index",
        "describe_replica",
        "describe_resource_group",
        "describe_role",
        "describe_snapshot",
        "describe_user",
        "drop_collection_properties",
        "drop_database_properties",
        "drop_index",
        "drop_index_properties",
        "drop_privilege_group",
        "drop_resource_group",
        "drop_role",
        "drop_snapshot",
        "drop_user",
        "dump_messages",
        "flush",
        "flush_all",
        "get",
        "get_collection_stats",
        "get_compaction_plans",
        "get_compaction_state",
        "get_flush_all_state",
        "get_load_state",
        "get_partition_stats",
        "get_refresh_external_collection_progress",
        "get_replicate_configuration",
        "get_replicate_info",
        "get_restore_snapshot_state",
        "get_server_type",
        "get_server_version",
        "grant_privilege",
        "grant_privilege_v2",
        "grant_role",
        "has_collection",
        "has_partition",
        "hybrid_search",
        "list_aliases",
        "list_collections",
        "list_compaction_tasks",
        "list_databases",
        "list_file_resources",
        "list_indexes",
        "list_loaded_segments",
        "list_partitions",
        "list_persistent_segments",
        "list_privilege_groups",
        "list_refresh_external_collection_jobs",
        "list_resource_groups",
        "list_restore_snapshot_jobs",
        "list_roles",
        "list_segments",
        "list_snapshots",
        "list_users",
        "load_collection",
        "load_partitions",
        "optimize",
        "pin_snapshot_data",
        "prepare_index_params",
        "query",
        "query_iterator",
        "refresh_load",
        "release_collection",
        "release_partitions",
        "remove_file_resource",
        "remove_privileges_from_group",
        "revoke_privilege",
        "revoke_privilege_v2",
        "revoke_role",
        "run_analyzer",
        "search",
        "search_iterator",
        "session",
        "transfer_replica",
        "unpin_snapshot_data",
        "update_password",
        "update_resource_groups",
        "update_user",
        "use_database",
        "using_database",
    }
)

# Collection properties that change rows: Milvus expires rows older than the TTL, which the shadow keeps.
ROW_CHANGING_PROPERTIES = frozenset({"collection.ttl.seconds"})
