"""A generated demo organization, written as the files the AWS CLI produces.

Three accounts of a fictional company, each with groups, people, CI users and service roles,
realistic AWS managed and customer managed policies, and usage that tells stories a reviewer
should catch: an AdministratorAccess role nobody used, a user with a 400-day-old active access
key, console users without MFA, roles whose services are used every day, and rights only partly
used. The files go through `inventory.importers`, the path any import-only account takes, and vary
the formats the importer accepts (paged and URL-encoded answers, CSV and JSON credential reports).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from inventory import policies

SERVICE_NAMES = {
    "athena": "Amazon Athena",
    "cloudformation": "AWS CloudFormation",
    "cloudtrail": "AWS CloudTrail",
    "cloudwatch": "Amazon CloudWatch",
    "config": "AWS Config",
    "dynamodb": "Amazon DynamoDB",
    "ec2": "Amazon EC2",
    "ecr": "Amazon Elastic Container Registry",
    "ecs": "Amazon Elastic Container Service",
    "eks": "Amazon Elastic Kubernetes Service",
    "elasticloadbalancing": "Elastic Load Balancing",
    "glue": "AWS Glue",
    "iam": "AWS Identity and Access Management",
    "kms": "AWS Key Management Service",
    "lambda": "AWS Lambda",
    "logs": "Amazon CloudWatch Logs",
    "organizations": "AWS Organizations",
    "rds": "Amazon RDS",
    "route53": "Amazon Route 53",
    "s3": "Amazon S3",
    "secretsmanager": "AWS Secrets Manager",
    "ses": "Amazon SES",
    "sns": "Amazon SNS",
    "sqs": "Amazon SQS",
    "ssm": "AWS Systems Manager",
    "sts": "AWS Security Token Service",
    "support": "AWS Support",
    "aws-portal": "AWS Billing",
    "ce": "AWS Cost Explorer",
    "budgets": "AWS Budgets",
}
# Services whose actions Access Advisor tracks, with the actions the demo knows of.
TRACKED_ACTIONS = {
    "s3": [
        "CreateBucket", "DeleteBucket", "DeleteObject", "GetBucketAcl", "GetBucketPolicy",
        "GetObject", "ListAllMyBuckets", "ListBucket", "PutBucketAcl", "PutBucketPolicy",
        "PutObject",
    ],
    "ec2": [
        "AuthorizeSecurityGroupIngress", "CreateSecurityGroup", "DescribeInstances",
        "DescribeSecurityGroups", "RunInstances", "StartInstances", "StopInstances",
        "TerminateInstances",
    ],
    "iam": [
        "AttachRolePolicy", "CreateAccessKey", "CreateRole", "CreateUser", "DeleteRole",
        "GetRole", "GetUser", "ListRoles", "ListUsers", "PassRole", "PutRolePolicy",
    ],
    "lambda": [
        "CreateFunction", "DeleteFunction", "GetFunction", "InvokeFunction", "ListFunctions",
        "UpdateFunctionCode",
    ],
}  # fmt: skip

ACCOUNTS = [
    ("210987654321", "acme-production"),
    ("321098765432", "acme-staging"),
    ("432109876543", "acme-sandbox"),
]
SECURITY_TOOLING_ACCOUNT = "543210987654"


def _doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(actions, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


AWS_POLICIES = {
    "AdministratorAccess": ("/", _doc(_allow("*"))),
    "PowerUserAccess": (
        "/",
        _doc(
            {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
            _allow(["iam:CreateServiceLinkedRole", "iam:ListRoles", "organizations:DescribeOrganization"]),
        ),
    ),
    "ReadOnlyAccess": (
        "/",
        _doc(
            _allow(
                [
                    "cloudtrail:Describe*", "cloudtrail:LookupEvents", "cloudwatch:Describe*",
                    "cloudwatch:Get*", "dynamodb:Describe*", "dynamodb:List*", "ec2:Describe*",
                    "ecs:Describe*", "ecs:List*", "iam:Get*", "iam:List*", "lambda:Get*",
                    "lambda:List*", "logs:Describe*", "logs:Get*", "rds:Describe*", "s3:Get*",
                    "s3:List*", "sns:Get*", "sns:List*", "sqs:Get*", "sqs:List*",
                ]
            )
        ),
    ),
    "SecurityAudit": (
        "/",
        _doc(
            _allow(
                [
                    "cloudtrail:Describe*", "cloudtrail:Get*", "config:Describe*", "config:Get*",
                    "ec2:Describe*", "iam:GenerateCredentialReport",
                    "iam:GenerateServiceLastAccessedDetails", "iam:Get*", "iam:List*",
                    "kms:Describe*", "kms:List*", "lambda:GetPolicy", "lambda:List*",
                    "logs:Describe*", "s3:GetBucketAcl", "s3:GetBucketPolicy", "s3:ListAllMyBuckets",
                ]
            )
        ),
    ),
    "AmazonS3FullAccess": ("/", _doc(_allow(["s3:*", "s3-object-lambda:*"]))),
    "AmazonS3ReadOnlyAccess": ("/", _doc(_allow(["s3:Get*", "s3:List*", "s3:Describe*"]))),
    "AmazonDynamoDBFullAccess": (
        "/",
        _doc(_allow(["dynamodb:*", "cloudwatch:GetMetricData", "sns:ListTopics", "iam:PassRole"])),
    ),
    "AmazonAthenaFullAccess": (
        "/",
        _doc(_allow(["athena:*", "glue:Get*", "glue:CreateTable", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:PutObject"])),
    ),
    "IAMFullAccess": ("/", _doc(_allow(["iam:*", "organizations:DescribeAccount"]))),
    "CloudWatchLogsFullAccess": ("/", _doc(_allow(["logs:*", "cloudwatch:GenerateQuery"]))),
    "AWSLambdaBasicExecutionRole": (
        "/service-role/",
        _doc(_allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"])),
    ),
    "AmazonECSTaskExecutionRolePolicy": (
        "/service-role/",
        _doc(
            _allow(
                [
                    "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "logs:CreateLogStream",
                    "logs:PutLogEvents",
                ]
            )
        ),
    ),
    "Billing": (
        "/job-function/",
        _doc(_allow(["aws-portal:*", "budgets:*", "ce:*", "cur:*", "support:*"])),
    ),
    "AWSSupportServiceRolePolicy": (
        "/aws-service-role/",
        _doc(_allow(["support:*", "ec2:Describe*", "iam:GetRole", "s3:GetBucketPolicy"])),
    ),
    "AmazonECSServiceRolePolicy": (
        "/aws-service-role/",
        _doc(_allow(["ec2:Describe*", "elasticloadbalancing:Describe*", "logs:CreateLogStream"])),
    ),
}  # fmt: skip


def _customer_policies(account_id: str) -> dict:
    prefix = f"arn:aws:s3:::acme-{account_id[-4:]}"
    return {
        "orders-data-access": (
            "/app/",
            _doc(
                _allow(["s3:GetObject", "s3:PutObject", "s3:ListBucket"], [prefix + "-orders", prefix + "-orders/*"]),
                _allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"], f"arn:aws:dynamodb:*:{account_id}:table/orders"),
                _allow(["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"], f"arn:aws:sqs:*:{account_id}:orders-*"),
            ),
        ),
        "deploy-pipeline": (
            "/ci/",
            _doc(
                _allow(["ecs:UpdateService", "ecs:RegisterTaskDefinition", "ecs:Describe*", "ecr:*", "cloudformation:*", "lambda:UpdateFunctionCode", "lambda:GetFunction"]),
                _allow("iam:PassRole"),
                _allow(["s3:PutObject", "s3:GetObject"], prefix + "-artifacts/*"),
            ),
        ),
        "secrets-read-app": (
            "/app/",
            _doc(
                _allow(["secretsmanager:GetSecretValue"], f"arn:aws:secretsmanager:*:{account_id}:secret:app/*"),
                _allow(["kms:Decrypt"], f"arn:aws:kms:*:{account_id}:key/*"),
            ),
        ),
        "developer-boundary": (
            "/boundaries/",
            _doc(
                {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"},
                {"Effect": "Deny", "Action": ["iam:CreateUser", "iam:CreateAccessKey"], "Resource": "*"},
            ),
        ),
        "attest-access-advisor": (
            "/attest/",
            _doc(_allow(["iam:GenerateServiceLastAccessedDetails", "iam:GetServiceLastAccessedDetails", "iam:GenerateCredentialReport", "iam:GetCredentialReport", "iam:GetAccountAuthorizationDetails"])),
        ),
    }  # fmt: skip


def _trust(service: str | None = None, *, account: str | None = None, federated=None, **cond):
    if service:
        principal = {"Service": service}
    elif federated:
        principal = {"Federated": federated}
    else:
        principal = {"AWS": f"arn:aws:iam::{account}:root"}
    action = "sts:AssumeRoleWithWebIdentity" if federated else "sts:AssumeRole"
    statement = {"Effect": "Allow", "Principal": principal, "Action": action}
    if cond:
        statement["Condition"] = cond
    return _doc(statement)


@dataclass
class Person:
    """How a principal uses what it holds; drives the generated Access Advisor answers."""

    usage: str  # daily, active, partial, dormant, never
    core: tuple[str, ...] = ()  # services used daily (daily) or recently (partial)


@dataclass
class Entity:
    kind: str
    name: str
    path: str = "/"
    managed: list[str] = field(default_factory=list)
    inline: dict[str, dict] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    boundary: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    trust: dict | None = None
    person: Person = field(default_factory=lambda: Person("active"))
    created_days_ago: int = 700
    console: bool = False
    mfa: bool = True
    keys: list[tuple[int, bool, int | None]] = field(default_factory=list)  # age, active, used


HUMANS = [
    "tanaka.akiko", "sato.kenji", "suzuki.yui", "takahashi.ren", "watanabe.mei", "ito.haruto",
    "yamamoto.sakura", "nakamura.daiki", "kobayashi.hina", "kato.sota", "yoshida.aoi",
    "yamada.riku", "sasaki.yuna", "matsumoto.kaito", "inoue.mio", "kimura.yuto", "hayashi.rin",
    "shimizu.sho", "garcia.maria", "okafor.daniel", "chen.wei", "smith.olivia",
]  # fmt: skip


def _organization(account_id: str, index: int, rng: random.Random) -> list[Entity]:
    """The principals of one account."""
    owner = ["reviewer@example.com", "manager@example.com", "reviewer@example.com"][index]
    entities = [
        Entity("group", "Administrators", managed=["AdministratorAccess"], person=Person("active")),
        Entity("group", "Developers", managed=["PowerUserAccess", "secrets-read-app"], person=Person("partial", ("ec2", "ecs", "logs", "s3", "lambda"))),
        Entity("group", "ReadOnly", managed=["ReadOnlyAccess"], person=Person("partial", ("ec2", "s3", "cloudwatch"))),
        Entity("group", "Billing", path="/finance/", managed=["Billing"], person=Person("partial", ("aws-portal", "ce"))),
        Entity("group", "DataScience", managed=["AmazonAthenaFullAccess", "AmazonS3ReadOnlyAccess"], person=Person("partial", ("athena", "s3", "glue"))),
    ]  # fmt: skip
    people = HUMANS[index * 3 :] + HUMANS[: index * 3]
    for i, name in enumerate(people[:17]):
        groups = ["Developers"]
        if i < 2:
            groups = ["Administrators"]
        elif i % 5 == 0:
            groups = ["ReadOnly"]
        elif i % 7 == 0:
            groups = ["Developers", "DataScience"]
        elif i == 3:
            groups = ["Billing", "ReadOnly"]
        usage = "dormant" if i in (9, 14) else "active"
        entities.append(
            Entity(
                "user",
                name,
                path="/people/",
                groups=groups,
                boundary="developer-boundary" if "Developers" in groups and i % 3 == 0 else None,
                tags={
                    "owner": f"{name}@example.com",
                    "team": rng.choice(["payments", "platform", "data", "web"]),
                },
                person=Person(usage),
                created_days_ago=rng.randint(200, 1500),
                console=True,
                # One console user per account has no MFA; a dormant one neither.
                mfa=i not in (4, 14),
                keys=[(rng.randint(20, 300), True, rng.randint(0, 20))] if i % 4 == 1 else [],
            )
        )
    entities += [
        Entity("user", "ci-legacy", path="/service/", managed=["deploy-pipeline"], tags={"owner": owner, "purpose": "old Jenkins deploys"}, person=Person("partial", ("ecs", "ecr")), created_days_ago=900, keys=[(400, True, 3)]),
        Entity("user", "backup-exporter", path="/service/", inline={"backup-to-s3": _doc(_allow(["s3:PutObject", "s3:GetObject", "s3:ListBucket"], "arn:aws:s3:::acme-backups/*"))}, tags={"owner": owner}, person=Person("daily", ("s3",)), created_days_ago=600, keys=[(85, True, 0)]),
        Entity("user", "terraform-legacy", path="/service/", managed=["AdministratorAccess"], tags={"owner": "manager@example.com"}, person=Person("dormant"), created_days_ago=1300, keys=[(1100, True, 240), (700, False, None)]),
        Entity("user", "reporting-bot", path="/service/", managed=["AmazonAthenaFullAccess"], tags={"owner": owner}, person=Person("partial", ("athena",)), created_days_ago=300, keys=[(120, True, 1)]),
        Entity("user", "former.contractor", path="/people/", groups=["Developers"], tags={"owner": "manager@example.com"}, person=Person("never"), created_days_ago=500, console=True, mfa=False),
    ]  # fmt: skip
    app_roles = [
        ("orders-api-task", "ecs-tasks.amazonaws.com", ["orders-data-access", "secrets-read-app"], ("s3", "dynamodb", "sqs", "secretsmanager", "kms")),
        ("payments-worker-task", "ecs-tasks.amazonaws.com", ["secrets-read-app", "AmazonDynamoDBFullAccess"], ("dynamodb", "secretsmanager", "kms")),
        ("search-indexer-task", "ecs-tasks.amazonaws.com", ["AmazonS3ReadOnlyAccess"], ("s3",)),
        ("report-generator-task", "ecs-tasks.amazonaws.com", ["AmazonS3FullAccess"], ("s3",)),
        ("ecs-task-execution", "ecs-tasks.amazonaws.com", ["AmazonECSTaskExecutionRolePolicy"], ("ecr", "logs")),
        ("ingest-lambda", "lambda.amazonaws.com", ["AWSLambdaBasicExecutionRole", "orders-data-access"], ("logs", "sqs", "s3")),
        ("thumbnail-lambda", "lambda.amazonaws.com", ["AWSLambdaBasicExecutionRole", "AmazonS3FullAccess"], ("logs", "s3")),
        ("email-sender-lambda", "lambda.amazonaws.com", ["AWSLambdaBasicExecutionRole"], ("logs",)),
        ("nightly-etl-glue", "glue.amazonaws.com", ["AmazonS3FullAccess", "AmazonAthenaFullAccess"], ("s3", "glue", "athena")),
        ("eks-node-group", "ec2.amazonaws.com", ["AmazonECSTaskExecutionRolePolicy", "CloudWatchLogsFullAccess"], ("ecr", "logs")),
        ("audit-log-shipper", "lambda.amazonaws.com", ["AWSLambdaBasicExecutionRole", "CloudWatchLogsFullAccess"], ("logs",)),
    ]  # fmt: skip
    for name, service, managed, core in app_roles:
        entities.append(
            Entity(
                "role",
                name,
                path="/app/",
                managed=managed,
                tags={"owner": owner, "service": name.rsplit("-", 1)[0]},
                trust=_trust(service),
                person=Person("daily", core),
                created_days_ago=rng.randint(100, 800),
            )
        )
    sso = "/aws-reserved/sso.amazonaws.com/"
    saml = f"arn:aws:iam::{account_id}:saml-provider/AWSSSO_{account_id[:6]}_DO_NOT_DELETE"
    entities += [
        Entity("role", "BreakGlassAdmin", path="/", managed=["AdministratorAccess"], tags={"owner": "manager@example.com", "purpose": "emergency access"}, trust=_trust(account=account_id, Bool={"aws:MultiFactorAuthPresent": "true"}), person=Person("never"), created_days_ago=760),
        Entity("role", "OrganizationAccountAccessRole", managed=["AdministratorAccess"], trust=_trust(account="109876543210"), person=Person("dormant"), created_days_ago=1400),
        Entity("role", "github-actions-deploy", path="/ci/", managed=["deploy-pipeline"], tags={"owner": owner}, trust=_trust(federated=f"arn:aws:iam::{account_id}:oidc-provider/token.actions.githubusercontent.com"), person=Person("daily", ("ecs", "ecr", "cloudformation", "iam")), created_days_ago=420),
        Entity("role", f"AWSReservedSSO_AdministratorAccess_{account_id[:4]}a1b2c3d4", path=sso, managed=["AdministratorAccess"], trust=_trust(federated=saml), person=Person("partial", ("ec2", "iam", "s3", "cloudformation", "logs")), created_days_ago=900),
        Entity("role", f"AWSReservedSSO_ReadOnlyAccess_{account_id[:4]}e5f6a7b8", path=sso, managed=["ReadOnlyAccess"], trust=_trust(federated=saml), person=Person("active"), created_days_ago=900),
        Entity("role", f"AWSReservedSSO_PowerUserAccess_{account_id[:4]}c9d0e1f2", path=sso, managed=["PowerUserAccess"], trust=_trust(federated=saml), person=Person("partial", ("ec2", "ecs", "s3", "lambda", "logs", "cloudwatch")), created_days_ago=900),
        Entity("role", "security-audit-crossaccount", path="/security/", managed=["SecurityAudit"], inline={"read-access-advisor": _doc(_allow(["iam:GetServiceLastAccessedDetails"]))}, trust=_trust(account=SECURITY_TOOLING_ACCOUNT, StringEquals={"sts:ExternalId": "acme-security"}), person=Person("daily", ("iam", "ec2", "s3", "cloudtrail", "config")), created_days_ago=650),
        Entity("role", "AttestReadOnly", path="/attest/", managed=["SecurityAudit", "attest-access-advisor"], trust=_trust(account=SECURITY_TOOLING_ACCOUNT, StringEquals={"sts:ExternalId": "attest"}), person=Person("daily", ("iam",)), created_days_ago=30),
        Entity("role", "legacy-batch-role", path="/app/", managed=["AmazonS3FullAccess", "AmazonDynamoDBFullAccess"], tags={"owner": owner}, trust=_trust("ec2.amazonaws.com"), person=Person("dormant"), created_days_ago=1100),
        Entity("role", "data-science-notebook", path="/app/", managed=["AmazonS3ReadOnlyAccess", "AmazonAthenaFullAccess"], boundary="developer-boundary", tags={"owner": owner}, trust=_trust("sagemaker.amazonaws.com"), person=Person("partial", ("s3",)), created_days_ago=240),
        Entity("role", "AWSServiceRoleForSupport", path="/aws-service-role/support.amazonaws.com/", managed=["AWSSupportServiceRolePolicy"], trust=_trust("support.amazonaws.com"), person=Person("active"), created_days_ago=1500),
        Entity("role", "AWSServiceRoleForECS", path="/aws-service-role/ecs.amazonaws.com/", managed=["AmazonECSServiceRolePolicy"], trust=_trust("ecs.amazonaws.com"), person=Person("daily", ("ec2", "elasticloadbalancing")), created_days_ago=1000),
    ]  # fmt: skip
    if index == 2:  # the sandbox: a role someone made by hand, far too wide and never used
        entities.append(Entity("role", "sandbox-admin-test", managed=["AdministratorAccess", "IAMFullAccess"], inline={"allow-everything": _doc(_allow("*"))}, tags={"owner": "reviewer@example.com"}, trust=_trust("ec2.amazonaws.com"), person=Person("never"), created_days_ago=180))  # fmt: skip
    return entities


class _Generator:
    def __init__(self, account_id: str, index: int, now: datetime, rng: random.Random):
        self.account_id = account_id
        self.index = index
        self.now = now
        self.rng = rng
        self.entities = _organization(account_id, index, rng)
        self.customer = _customer_policies(account_id)

    def ago(self, days: float) -> datetime:
        return (self.now - timedelta(days=days)).replace(microsecond=0)

    def policy_arn(self, name: str) -> str:
        if name in AWS_POLICIES:
            return f"arn:aws:iam::aws:policy{AWS_POLICIES[name][0]}{name}"
        return f"arn:aws:iam::{self.account_id}:policy{self.customer[name][0]}{name}"

    def document(self, name: str) -> dict:
        return (AWS_POLICIES.get(name) or self.customer[name])[1]

    def arn(self, entity: Entity) -> str:
        return f"arn:aws:iam::{self.account_id}:{entity.kind}{entity.path}{entity.name}"

    def aws_id(self, entity: Entity) -> str:
        prefix = {"user": "AIDA", "group": "AGPA", "role": "AROA"}[entity.kind]
        return prefix + "".join(
            self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(17)
        )

    # GetAccountAuthorizationDetails -------------------------------------------------------------

    def authorization_details(self, stamp) -> dict:
        attached: dict[str, int] = {}
        users, groups, roles = [], [], []
        for entity in self.entities:
            for name in entity.managed:
                attached[name] = attached.get(name, 0) + 1
            common = {
                "Path": entity.path,
                "Arn": self.arn(entity),
                "CreateDate": stamp(self.ago(entity.created_days_ago)),
                "AttachedManagedPolicies": [
                    {"PolicyName": name, "PolicyArn": self.policy_arn(name)}
                    for name in entity.managed
                ],
            }
            inline = [
                {"PolicyName": name, "PolicyDocument": self.encode(document)}
                for name, document in entity.inline.items()
            ]
            if entity.boundary:
                attached[entity.boundary] = attached.get(entity.boundary, 0)
                common["PermissionsBoundary"] = {
                    "PermissionsBoundaryType": "Policy",
                    "PermissionsBoundaryArn": self.policy_arn(entity.boundary),
                }
            tags = [{"Key": k, "Value": v} for k, v in entity.tags.items()]
            if entity.kind == "group":
                groups.append(
                    {
                        "GroupName": entity.name,
                        "GroupId": self.aws_id(entity),
                        **common,
                        "GroupPolicyList": inline,
                    }
                )
            elif entity.kind == "user":
                users.append({"UserName": entity.name, "UserId": self.aws_id(entity), **common, "UserPolicyList": inline, "GroupList": entity.groups, "Tags": tags})  # fmt: skip
            else:
                last_used = self.role_last_used(entity)
                roles.append(
                    {
                        "RoleName": entity.name,
                        "RoleId": self.aws_id(entity),
                        **common,
                        "AssumeRolePolicyDocument": self.encode(entity.trust),
                        "InstanceProfileList": [],
                        "RolePolicyList": inline,
                        "Tags": tags,
                        "RoleLastUsed": (
                            {"LastUsedDate": stamp(last_used), "Region": "ap-northeast-1"}
                            if last_used
                            else {}
                        ),
                    }
                )
        for entity in self.entities:
            for group in entity.groups:
                for name in next(e for e in self.entities if e.name == group).managed:
                    attached.setdefault(name, 0)
        policies_out = []
        for name in sorted(attached):
            created = self.ago(2000 if name in AWS_POLICIES else 500)
            updated = self.ago(90 if name in AWS_POLICIES else 200)
            document = self.document(name)
            versions = [
                {"Document": self.encode(document), "VersionId": "v3", "IsDefaultVersion": True, "CreateDate": stamp(updated)}
            ]  # fmt: skip
            if name in AWS_POLICIES or name == "deploy-pipeline":
                older = dict(document, Statement=document["Statement"][:1])
                versions.append({"Document": self.encode(older), "VersionId": "v2", "IsDefaultVersion": False, "CreateDate": stamp(created)})  # fmt: skip
            path = (AWS_POLICIES.get(name) or self.customer[name])[0]
            policies_out.append(
                {
                    "PolicyName": name,
                    "PolicyId": "ANPA" + "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ234567") for _ in range(17)),
                    "Arn": self.policy_arn(name),
                    "Path": path,
                    "DefaultVersionId": "v3",
                    "AttachmentCount": attached[name],
                    "PermissionsBoundaryUsageCount": sum(1 for e in self.entities if e.boundary == name),
                    "IsAttachable": True,
                    "CreateDate": stamp(created),
                    "UpdateDate": stamp(updated),
                    "PolicyVersionList": versions,
                }
            )  # fmt: skip
        return {
            "UserDetailList": users,
            "GroupDetailList": groups,
            "RoleDetailList": roles,
            "Policies": policies_out,
        }

    def encode(self, document):
        return document  # the AWS CLI writes documents as JSON objects

    def role_last_used(self, entity: Entity) -> datetime | None:
        return {
            "daily": self.ago(self.rng.uniform(0.01, 0.9)),
            "active": self.ago(self.rng.uniform(1, 40)),
            "partial": self.ago(self.rng.uniform(0.1, 10)),
            "dormant": self.ago(self.rng.uniform(120, 400)),
            "never": None,
        }[entity.person.usage]

    # Access Advisor ------------------------------------------------------------------------------

    def documents_of(self, entity: Entity) -> list[dict]:
        names = list(entity.managed)
        for group in entity.groups:
            names += next(e for e in self.entities if e.name == group).managed
        return [self.document(name) for name in names] + list(entity.inline.values())

    def last_access(self, entity: Entity, namespace: str) -> datetime | None:
        person = entity.person
        rng = self.rng
        if person.usage == "never":
            return None
        if person.usage == "daily":
            return self.ago(rng.uniform(0.01, 1)) if namespace in person.core else None
        if person.usage == "dormant":
            return self.ago(rng.uniform(120, 420)) if rng.random() < 0.5 else None
        if person.usage == "partial":
            if namespace in person.core:
                return self.ago(rng.uniform(0.1, 20))
            return self.ago(rng.uniform(100, 380)) if rng.random() < 0.15 else None
        roll = rng.random()  # active people use most of what they hold, some of it long ago
        if roll < 0.55:
            return self.ago(rng.uniform(0.2, 60))
        return self.ago(rng.uniform(95, 390)) if roll < 0.75 else None

    def access_advisor(self, stamp) -> list[dict]:
        answers = []
        for entity in self.entities:
            documents = self.documents_of(entity)
            services = []
            for namespace in sorted(policies.services(documents, SERVICE_NAMES)):
                if namespace not in SERVICE_NAMES:
                    continue
                used = self.last_access(entity, namespace)
                service = {
                    "ServiceName": SERVICE_NAMES[namespace],
                    "ServiceNamespace": namespace,
                    "TotalAuthenticatedEntities": 0,
                }
                if used:
                    service.update(
                        LastAuthenticated=stamp(used),
                        LastAuthenticatedEntity=self.arn(entity),
                        LastAuthenticatedRegion="ap-northeast-1",
                        TotalAuthenticatedEntities=1,
                    )
                if namespace in TRACKED_ACTIONS:
                    actions = []
                    for action in TRACKED_ACTIONS[namespace]:
                        if not policies.allows(documents, f"{namespace}:{action}"):
                            continue
                        entry = {"ActionName": action}
                        if used and (
                            action.startswith(("Get", "List", "Describe", "Put", "Invoke", "Pass"))
                            or self.rng.random() < 0.2
                        ):
                            entry.update(LastAccessedTime=stamp(used), LastAccessedEntity=self.arn(entity), LastAccessedRegion="ap-northeast-1")  # fmt: skip
                        actions.append(entry)
                    service["TrackedActionsLastAccessed"] = actions
                services.append(service)
            answers.append(
                {
                    "Arn": self.arn(entity),
                    "JobStatus": "COMPLETED",
                    "JobType": "ACTION_LEVEL",
                    "JobCreationDate": stamp(self.ago(0.01)),
                    "JobCompletionDate": stamp(self.ago(0.005)),
                    "ServicesLastAccessed": services,
                    "IsTruncated": False,
                }
            )
        return answers

    # The credential report --------------------------------------------------------------------

    def credential_report(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([
            "user", "arn", "user_creation_time", "password_enabled", "password_last_used",
            "password_last_changed", "password_next_rotation", "mfa_active",
            "access_key_1_active", "access_key_1_last_rotated", "access_key_1_last_used_date",
            "access_key_1_last_used_region", "access_key_1_last_used_service",
            "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
            "access_key_2_last_used_region", "access_key_2_last_used_service",
            "cert_1_active", "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated",
        ])  # fmt: skip
        iso = lambda moment: moment.isoformat() if moment else "N/A"  # noqa: E731
        writer.writerow(
            [
                "<root_account>",
                f"arn:aws:iam::{self.account_id}:root",
                iso(self.ago(2200)),
                "not_supported",
                iso(self.ago(400)),
                "not_supported",
                "not_supported",
                "true",
                "false",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "false",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "false",
                "N/A",
                "false",
                "N/A",
            ]
        )
        for entity in self.entities:
            if entity.kind != "user":
                continue
            password_used = None
            if entity.console and entity.person.usage != "never":
                password_used = self.ago(
                    self.rng.uniform(150, 400) if entity.person.usage == "dormant" else self.rng.uniform(0.1, 20)
                )  # fmt: skip
            keys = []
            for age, active, used in entity.keys[:2]:
                used_at = self.ago(used + self.rng.uniform(0, 0.9)) if used is not None else None
                keys += [
                    "true" if active else "false",
                    iso(self.ago(age)),
                    iso(used_at),
                    "ap-northeast-1" if used_at else "N/A",
                    self.rng.choice(["s3", "ecs", "athena", "sts"]) if used_at else "N/A",
                ]
            while len(keys) < 10:
                keys += ["false", "N/A", "N/A", "N/A", "N/A"]
            writer.writerow(
                [
                    entity.name,
                    self.arn(entity),
                    iso(self.ago(entity.created_days_ago)),
                    "true" if entity.console else "false",
                    iso(password_used) if entity.console else "N/A",
                    iso(self.ago(min(entity.created_days_ago, 80))) if entity.console else "N/A",
                    "N/A",
                    "true" if entity.console and entity.mfa else "false",
                    *keys,
                    "false", "N/A", "false", "N/A",
                ]
            )  # fmt: skip
        return out.getvalue()


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _spaced(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00:00")


def _url_encoded(document: dict) -> str:
    return quote(json.dumps(document), safe="")


def generate(directory: Path, now: datetime | None = None, seed: int = 2026) -> list[dict]:
    """Write the demo organization's files; returns, per account, its id, name and files."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rng = random.Random(seed)
    result = []
    for index, (account_id, name) in enumerate(ACCOUNTS):
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        generator = _Generator(account_id, index, now, rng)
        files = []
        if index == 0:
            # As the IAM API answers: documents URL-encoded, the answer in two pages.
            generator.encode = lambda document: _url_encoded(document) if document else document
            details = generator.authorization_details(_iso)
            first = {key: value[: len(value) // 2] for key, value in details.items()}
            second = {key: value[len(value) // 2 :] for key, value in details.items()}
            files += [
                _write(folder / "authorization-details-1.json", {**first, "IsTruncated": True, "Marker": "page2"}),
                _write(folder / "authorization-details-2.json", {**second, "IsTruncated": False}),
            ]  # fmt: skip
        else:
            stamp = _spaced if index == 1 else _iso
            files.append(
                _write(
                    folder / "authorization-details.json", generator.authorization_details(stamp)
                )
            )
        report = generator.credential_report()
        if index == 1:
            content = base64.b64encode(report.encode()).decode()
            files.append(
                _write(
                    folder / "credential-report.json",
                    {"Content": content, "ReportFormat": "text/csv", "GeneratedTime": _iso(now)},
                )
            )
        else:
            path = folder / "credential-report.csv"
            path.write_text(report)
            files.append(path)
        files.append(_write(folder / "access-advisor.json", generator.access_advisor(_iso)))
        result.append({"account_id": account_id, "name": name, "files": files})
    return result


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=1))
    return path
