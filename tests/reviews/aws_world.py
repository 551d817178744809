"""An AWS account to remediate, built in moto as an administrator would, and collected by Attest.

`World` creates the principals and rights with boto3, seeds Access Advisor so that reductions
have actions to keep, and `collect` reads the account through `inventory.collect` as a worker
does: the inventory, the campaign's items and their rights are the real thing. The test then
reads AWS with `World.iam` to see what a remediation did.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import unquote

from django.utils import timezone
from moto.core.responses import EmptyResult
from moto.iam.models import User
from moto.iam.responses import IamResponse

from inventory.collect import collect_run
from inventory.models import AwsAccount, CollectionRun
from tests import factories
from tests.aws_emulator import OWN_ACCOUNT_ID, action_usage, service_usage

PASSWORD = "Correct-Horse-42!"
READS = ("Get", "List", "Generate", "Describe")


def document(*actions: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
    }


def trust(account_id: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


S3_READ = document("s3:Get*", "s3:List*")
BOUNDARY = document("s3:*", "cloudformation:*")
DATA_RW = document(
    "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "dynamodb:GetItem", "dynamodb:PutItem"
)
S3_RW = document("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
ATHENA = document("athena:StartQueryExecution", "athena:GetQueryResults", "glue:GetTable")


def _put_user_permissions_boundary(self: IamResponse):
    user = self.backend.get_user(self._get_param("UserName"))
    user.permissions_boundary_arn = self._get_param("PermissionsBoundary")
    return EmptyResult()


def _delete_user_permissions_boundary(self: IamResponse):
    self.backend.get_user(self._get_param("UserName")).permissions_boundary_arn = None
    return EmptyResult()


def _user_boundary(user: User) -> dict | None:
    arn = getattr(user, "permissions_boundary_arn", None)
    if not arn:
        return None
    return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn}


def user_boundaries(monkeypatch) -> None:
    """moto 5.2 has no permissions boundary on users: Put/DeleteUserPermissionsBoundary are
    missing, and GetUser and the authorization details never show one. Added as moto does it
    for roles, for the test's duration."""
    monkeypatch.setattr(
        IamResponse, "put_user_permissions_boundary", _put_user_permissions_boundary, raising=False
    )
    monkeypatch.setattr(
        IamResponse,
        "delete_user_permissions_boundary",
        _delete_user_permissions_boundary,
        raising=False,
    )
    monkeypatch.setattr(User, "permissions_boundary", property(_user_boundary), raising=False)


class World:
    """One account, every kind of right Attest remediates:

    developers (group): s3-read attached, inline describe-ec2
    analysts (group):   athena attached; members gina and hank
    alice (user):       member of developers, s3-read attached, inline send-sqs, an access key
                        and a console password
    carol (user):       boundary as permissions boundary
    dave (user):        inline s3-rw (Get/Put/DeleteObject); used s3:GetObject
    erin, frank:        data-rw attached to both (S3 and DynamoDB); erin used s3:GetObject
    gina, hank (users): members of analysts; gina used Athena
    deployer (role):    s3-read attached, boundary as permissions boundary, inline deploy
    """

    def __init__(self, emulator, account_id: str = OWN_ACCOUNT_ID):
        self.emulator = emulator
        self.account_id = account_id
        iam = self.iam = emulator.session(account_id).client("iam")

        def policy(name, doc):
            return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))["Policy"][
                "Arn"
            ]

        self.s3_read = policy("s3-read", S3_READ)
        self.boundary = policy("boundary", BOUNDARY)
        self.data_rw = policy("data-rw", DATA_RW)
        self.athena = policy("athena", ATHENA)

        self.developers = iam.create_group(GroupName="developers")["Group"]["Arn"]
        iam.attach_group_policy(GroupName="developers", PolicyArn=self.s3_read)
        iam.put_group_policy(
            GroupName="developers",
            PolicyName="describe-ec2",
            PolicyDocument=json.dumps(document("ec2:Describe*")),
        )
        self.analysts = iam.create_group(GroupName="analysts")["Group"]["Arn"]
        iam.attach_group_policy(GroupName="analysts", PolicyArn=self.athena)

        users = {}
        for name in ("alice", "carol", "dave", "erin", "frank", "gina", "hank"):
            users[name] = iam.create_user(UserName=name)["User"]["Arn"]
        self.users = users
        iam.add_user_to_group(GroupName="developers", UserName="alice")
        iam.attach_user_policy(UserName="alice", PolicyArn=self.s3_read)
        iam.put_user_policy(
            UserName="alice",
            PolicyName="send-sqs",
            PolicyDocument=json.dumps(document("sqs:SendMessage")),
        )
        self.alice_key = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
        iam.create_login_profile(UserName="alice", Password=PASSWORD)
        iam.put_user_permissions_boundary(UserName="carol", PermissionsBoundary=self.boundary)
        iam.put_user_policy(UserName="dave", PolicyName="s3-rw", PolicyDocument=json.dumps(S3_RW))
        iam.attach_user_policy(UserName="erin", PolicyArn=self.data_rw)
        iam.attach_user_policy(UserName="frank", PolicyArn=self.data_rw)
        iam.add_user_to_group(GroupName="analysts", UserName="gina")
        iam.add_user_to_group(GroupName="analysts", UserName="hank")

        self.deployer = iam.create_role(
            RoleName="deployer",
            AssumeRolePolicyDocument=trust(account_id),
            PermissionsBoundary=self.boundary,
        )["Role"]["Arn"]
        iam.attach_role_policy(RoleName="deployer", PolicyArn=self.s3_read)
        iam.put_role_policy(
            RoleName="deployer",
            PolicyName="deploy",
            PolicyDocument=json.dumps(document("cloudformation:*")),
        )

        used = timezone.now() - timedelta(days=2)
        s3_get = [action_usage("GetObject", last=used), action_usage("PutObject")]
        emulator.usage[users["dave"]] = [
            service_usage("s3", "Amazon S3", last=used, actions=s3_get)
        ]
        emulator.usage[users["erin"]] = [
            service_usage("s3", "Amazon S3", last=used, actions=s3_get),
            service_usage("dynamodb", "Amazon DynamoDB", last=used),
        ]
        emulator.usage[users["gina"]] = [
            service_usage("athena", "Amazon Athena", last=used),
            service_usage("glue", "AWS Glue", last=used),
        ]

    # Reading AWS, as the test checks it -------------------------------------------------------

    def attached(self, kind: str, name: str) -> set[str]:
        noun = kind.capitalize()
        answer = getattr(self.iam, f"list_attached_{kind}_policies")(**{f"{noun}Name": name})
        return {policy["PolicyArn"] for policy in answer["AttachedPolicies"]}

    def inline(self, kind: str, name: str) -> dict[str, dict]:
        """The principal's inline policies by name, each document parsed."""
        noun = kind.capitalize()
        found = {}
        for policy in getattr(self.iam, f"list_{kind}_policies")(**{f"{noun}Name": name})[
            "PolicyNames"
        ]:
            answer = getattr(self.iam, f"get_{kind}_policy")(
                **{f"{noun}Name": name, "PolicyName": policy}
            )
            found[policy] = _parsed(answer["PolicyDocument"])
        return found

    def groups_of(self, user: str) -> set[str]:
        return {g["GroupName"] for g in self.iam.list_groups_for_user(UserName=user)["Groups"]}

    def boundary_of(self, kind: str, name: str) -> str | None:
        noun = kind.capitalize()
        answer = getattr(self.iam, f"get_{kind}")(**{f"{noun}Name": name})[noun]
        return (answer.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")

    def keys_of(self, user: str) -> dict[str, str]:
        """Access key id -> status."""
        return {
            key["AccessKeyId"]: key["Status"]
            for key in self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        }

    def login_profile(self, user: str) -> dict | None:
        try:
            return self.iam.get_login_profile(UserName=user)["LoginProfile"]
        except self.iam.exceptions.NoSuchEntityException:
            return None

    def policy_document(self, arn: str) -> dict:
        policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
        version = self.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        return _parsed(version["PolicyVersion"]["Document"])

    def writes(self) -> dict[str, int]:
        """The IAM requests received that change something, by operation."""
        return {
            operation: count
            for operation, count in self.emulator.requests.items()
            if not operation.startswith(READS) and operation not in ("AssumeRole",)
        }


def _parsed(value) -> dict:
    if isinstance(value, dict):
        return value
    return json.loads(unquote(value))


def own_account(owner, mode: str = AwsAccount.Mode.LIVE) -> AwsAccount:
    """The account Attest's own credentials are in (read without assuming a role)."""
    return factories.AwsAccountFactory(
        account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="", owner=owner, mode=mode
    )


def collect(account: AwsAccount) -> CollectionRun:
    """A live collection of the account, as a worker runs it; fails the test if it fails."""
    run = collect_run(
        CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE).pk
    )
    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    account.refresh_from_db()
    return run
