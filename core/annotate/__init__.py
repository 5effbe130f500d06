"""Rating campaigns: the store, assignment, aggregation, access (DESIGN.md: annotate/).

Pages use two session objects and nothing else::

    store = Store()                                   # $AFFECTLAB_DB_URL or data/affectlab.db
    owner = open_owner(store, password)               # or owner_session(store, grant): signin
    invite = owner.create_campaign("faces-1", "data/datasets/faces-default", ratings_per_item=5)
    rater = join_campaign(store, invite.token, "alice")   # rater.resume_code: shown once
    item = rater.next_item(); rater.submit(item.item_id, "category", 3, time_spent=2.1)
    again = resume_rater(store, rater.link_token)     # what a reload of the page does
"""

from affectlab.annotate.access import (
    AccessDenied,
    RaterRevoked,
    ResumeCodeRequired,
    ensure_admin_password,
    invite_link,
)
from affectlab.annotate.service import (
    CampaignProgress,
    DuplicateRatingError,
    Invite,
    ItemUnavailable,
    ItemView,
    OwnerSession,
    RateLimited,
    RaterProgress,
    RaterSession,
    join_campaign,
    open_owner,
    owner_session,
    resume_rater,
)
from affectlab.annotate.store import Store, default_db_url

__all__ = [
    "AccessDenied",
    "CampaignProgress",
    "DuplicateRatingError",
    "Invite",
    "ItemUnavailable",
    "ItemView",
    "OwnerSession",
    "RateLimited",
    "RaterProgress",
    "RaterRevoked",
    "RaterSession",
    "ResumeCodeRequired",
    "Store",
    "default_db_url",
    "ensure_admin_password",
    "invite_link",
    "join_campaign",
    "open_owner",
    "owner_session",
    "resume_rater",
]
