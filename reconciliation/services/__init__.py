"""Every write of reconciliation, one module a seam: building DCRs from DynamoDB (build),
the guarded daily job and the 15-minute tick (jobs), today's figures from the transactions'
stream (live), the DCR and DBS workflows (workflow),
the DBS figures (dbs), deposits and bank statements.
"""

from ._common import KEY_LENGTH, DcrRef
from .build import BUILD_DCR, BuildReport, dcr_build, dcr_build_many, dcr_build_range, dcr_write
from .dbs import dbs_refresh
from .deposits import (
    ADD_DEPOSIT,
    CHANGE_DEPOSIT,
    DELETE_DEPOSIT,
    SLIP_SCAN_MAX_BYTES,
    SLIP_SCAN_TYPES,
    deposit_delete,
    deposit_problems,
    deposit_record,
    deposit_update,
    slip_scan_problem,
)
from .jobs import JOB_LEASE, dcr_daily_run, reconciliation_tick
from .live import LiveReport, dcr_live_apply
from .statements import ADD_STATEMENT, STATEMENT_MAX_BYTES, statement_match, statement_upload
from .workflow import (
    APPROVE_DBS,
    APPROVE_DCR,
    SUBMIT_DBS,
    SUBMIT_DCR,
    dbs_approve,
    dbs_return,
    dbs_submit,
    dcr_approve,
    dcr_return,
    dcr_submit,
)

__all__ = [
    "ADD_DEPOSIT",
    "ADD_STATEMENT",
    "APPROVE_DBS",
    "APPROVE_DCR",
    "BUILD_DCR",
    "CHANGE_DEPOSIT",
    "DELETE_DEPOSIT",
    "JOB_LEASE",
    "KEY_LENGTH",
    "SLIP_SCAN_MAX_BYTES",
    "SLIP_SCAN_TYPES",
    "STATEMENT_MAX_BYTES",
    "SUBMIT_DBS",
    "SUBMIT_DCR",
    "BuildReport",
    "DcrRef",
    "LiveReport",
    "dbs_approve",
    "dbs_refresh",
    "dbs_return",
    "dbs_submit",
    "dcr_approve",
    "dcr_build",
    "dcr_build_many",
    "dcr_build_range",
    "dcr_daily_run",
    "dcr_live_apply",
    "dcr_return",
    "dcr_submit",
    "dcr_write",
    "deposit_delete",
    "deposit_problems",
    "deposit_record",
    "deposit_update",
    "reconciliation_tick",
    "slip_scan_problem",
    "statement_match",
    "statement_upload",
]
