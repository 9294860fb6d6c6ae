"""The append-only, hash-chained audit trail: append, verify, export and retention."""

from costwarden.audit.evidence import evidence
from costwarden.audit.export import iter_entries, write_jsonl
from costwarden.audit.hashing import GENESIS_HASH, chain_hash, entry_body, json_safe
from costwarden.audit.hooks import record_policy_change
from costwarden.audit.retention import PruneResult, prune
from costwarden.audit.trail import KINDS, Head, append, entry_json, find_entry, head, list_entries
from costwarden.audit.verify import Anchor, Problem, VerifyReport, read_anchor_file, verify

__all__ = [
    "GENESIS_HASH",
    "KINDS",
    "Anchor",
    "Head",
    "Problem",
    "PruneResult",
    "VerifyReport",
    "append",
    "chain_hash",
    "entry_body",
    "entry_json",
    "evidence",
    "find_entry",
    "head",
    "iter_entries",
    "json_safe",
    "list_entries",
    "prune",
    "read_anchor_file",
    "record_policy_change",
    "verify",
    "write_jsonl",
]
