"""The governance review: realised savings of applied actions, and the periodic review report.

``record_realised_savings`` compares each changed scope's spend with the forecast of that spend
without the change, once per pass. ``build_review`` measures alert precision and lead time, the
accuracy of savings estimates, approvals, action runs and anomaly feedback over a date range.
"""

from costwarden.review.realised import (
    EVALUATION_WINDOWS,
    RealisedPass,
    WindowResult,
    record_realised_savings,
)
from costwarden.review.report import REVIEW_SCHEMA_VERSION, ReviewRange, build_review

__all__ = [
    "EVALUATION_WINDOWS",
    "REVIEW_SCHEMA_VERSION",
    "RealisedPass",
    "ReviewRange",
    "WindowResult",
    "build_review",
    "record_realised_savings",
]
