"""Generated input for the parsers of AWS answers and for the policy reducer, with hypothesis:
whatever a file or an answer holds, the parser either builds a snapshot of the account or raises
`ParseError` naming where; whatever a policy and a keep set are, a reduction never allows more
than the policy did nor anything that was not kept. A failure shrinks to a small example.
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.importers import ImportFile, add_file
from inventory.parse import UNSTORABLE, ParseError, SnapshotBuilder, parse_document
from reviews.reduce import ReductionError, allowed_entries, reduce_document
from tests.reviews.test_reduce import ACTIONS, UNIVERSE, allowed, kept

ACCOUNT_ID = "111122223333"
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values of every kind, text included that PostgreSQL cannot store.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
names = st.from_regex(r"[\w+=,.@-]{1,20}", fullmatch=True)
accounts = st.sampled_from([ACCOUNT_ID, "444455556666"])


@st.composite
def principals(draw):
    """A UserDetailList entry close to AWS's, with any field possibly replaced by junk."""
    name = draw(names)
    entry = {
        "UserName": name,
        "UserId": "AIDA" + name,
        "Arn": f"arn:aws:iam::{draw(accounts)}:user/{name}",
        "Path": "/",
        "CreateDate": "2026-01-12T08:00:00Z",
        "UserPolicyList": [
            {
                "PolicyName": draw(names),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                },
            }
        ],
        "GroupList": [],
        "AttachedManagedPolicies": [],
        "Tags": [{"Key": draw(st.text(max_size=10)), "Value": draw(st.text(max_size=10))}],
    }
    for key in draw(st.lists(st.sampled_from(sorted(entry)), max_size=2, unique=True)):
        entry[key] = draw(json_values)
    return entry


def attempt(call):
    """What `call()` gave, or the ParseError it raised: (result, None) or (None, error)."""
    try:
        return call(), None
    except ParseError as exc:
        return None, exc


def build(builder, page):
    builder.add_authorization_details(page, "details.json")
    return builder.build()


@EXAMPLES
@given(st.lists(principals(), max_size=4), st.booleans())
def test_authorization_details_are_read_or_refused_with_a_place(users, truncated):
    builder = SnapshotBuilder(ACCOUNT_ID)
    page = {"UserDetailList": users, "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    page["IsTruncated"] = truncated
    snapshot, refused = attempt(lambda: build(builder, page))
    if refused is not None:
        assert refused.where.startswith("details.json")
        assert refused.message
        return
    assert not truncated
    for arn, principal in snapshot.principals.items():
        assert arn.startswith(f"arn:aws:iam::{ACCOUNT_ID}:")
        for text in [principal["name"], *principal["tags"], *principal["tags"].values()]:
            assert not UNSTORABLE.search(text)
    assert len(snapshot.principals) == len(users)


@EXAMPLES
@given(st.binary(max_size=200) | json_values.map(lambda value: json.dumps(value).encode()))
def test_any_file_is_read_as_an_aws_answer_or_refused_naming_the_file(content):
    builder = SnapshotBuilder(ACCOUNT_ID)
    _kind, refused = attempt(lambda: add_file(builder, ImportFile("upload.json", content)))
    if refused is not None:
        assert refused.where.startswith("upload.json")
        assert refused.message


@EXAMPLES
@given(st.lists(st.text(max_size=25), min_size=1, max_size=4))
def test_any_credential_report_line_is_read_or_refused_naming_its_line(cells):
    header = (
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
        "mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,"
        "access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,"
        "access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,"
        "access_key_2_last_used_service"
    )
    builder = SnapshotBuilder(ACCOUNT_ID)
    text = f"{header}\n{','.join(cells)}\n"
    _none, refused = attempt(lambda: builder.add_credential_report(text, "report.csv"))
    if refused is not None:
        assert refused.where.startswith("report.csv")
        assert refused.message


@EXAMPLES
@given(json_values)
def test_a_policy_document_is_an_object_with_statements_or_refused(value):
    for given_as in (value, json.dumps(value)):
        document, refused = attempt(lambda given_as=given_as: parse_document(given_as, "Document"))
        if refused is not None:
            assert refused.where.startswith("Document")
            continue
        assert isinstance(document, dict)
        assert isinstance(document["Statement"], list | dict)


# The reducer -------------------------------------------------------------------------------------

services = st.sampled_from([*UNIVERSE, "rds"])
action_names = st.sampled_from(sorted({name for names in UNIVERSE.values() for name in names}))


@st.composite
def patterns(draw):
    """An IAM action pattern: exact, a prefix wildcard, a `?`, a whole service, or `*`."""
    service = draw(services | st.sampled_from(["*", "s*", "?3", "S3"]))
    name = draw(action_names)
    cut = draw(st.integers(min_value=0, max_value=len(name)))
    action = draw(
        st.sampled_from(
            [name, name[:cut] + "*", name[:cut] + "?" + name[cut + 1 :], "*", name.lower()]
        )
    )
    return draw(st.sampled_from([f"{service}:{action}", "*"]))


@st.composite
def statements(draw):
    key = draw(st.sampled_from(["Action", "Action", "NotAction"]))
    effect = draw(st.sampled_from(["Allow", "Allow", "Deny"]))
    chosen = draw(st.lists(patterns(), min_size=1, max_size=4))
    return {"Effect": effect, key: chosen if len(chosen) > 1 else chosen[0], "Resource": "*"}


documents = st.lists(statements(), min_size=1, max_size=4).map(
    lambda found: {"Version": "2012-10-17", "Statement": found}
)
entries = st.lists(
    services
    | st.builds(lambda s, a: f"{s}:{a}", services, action_names)
    | st.builds(lambda s, a: f"{s}:{a[:3]}*", services, action_names),
    min_size=1,
    max_size=5,
)


@EXAMPLES
@given(documents, entries)
def test_a_reduction_never_allows_what_the_policy_did_not_or_what_was_not_kept(document, keep):
    try:
        reduced = reduce_document(document, keep)
    except ReductionError:
        assert allowed_entries(document, keep) == []
        return
    for statement in reduced["Statement"]:
        assert "NotAction" not in statement or statement["Effect"] == "Deny"
    for action in ACTIONS:
        if allowed(reduced, action, through=None):
            assert allowed(document, action, through=None), action
            assert kept(keep, action), action
