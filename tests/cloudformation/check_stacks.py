"""Creates the three lava CloudFormation stacks in moto and checks what they made.

Usage: python check_stacks.py CLOUDFORMATION_DIR

Runs moto in-process (mock_aws), not against the shared moto_server of
tests/run: the common stack creates the account-wide `lava.realms` table,
which other tests on the shared server use. Prints one JSON summary line;
exits 1 with the reason on the first failed check.
"""

import json
import os
import sys
from pathlib import Path

# In-process moto: no endpoint override, dummy credentials, one region.
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)

import boto3  # noqa: E402
from cfnlint.decode import cfn_yaml  # noqa: E402
from moto import mock_aws  # noqa: E402

REALM = "cfnrealm"
WORKER = "core-1"
BUCKET = "lava-cfnrealm-bucket"
VERSION = "1.2.3"


def fail(message):
    print(f"check_stacks: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def create(cfn, name, template, params):
    body = Path(template).read_text()
    cfn.create_stack(
        StackName=name,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
        reasons = [e.get("ResourceStatusReason") for e in events if e.get("ResourceStatusReason")]
        fail(f"stack {name}: {stack['StackStatus']}: {reasons}")
    return stack


def key_schema(schema):
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


def main(cfn_dir):
    cfn_dir = Path(cfn_dir)
    summary = {}
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        cfn = session.client("cloudformation")
        ddb = session.client("dynamodb")
        sqs = session.client("sqs")
        kms = session.client("kms")
        iam = session.client("iam")
        ec2 = session.client("ec2")
        asg = session.client("autoscaling")
        sns = session.client("sns")
        s3 = session.client("s3")

        statuses = {}
        stack = create(cfn, "lava-common", cfn_dir / "lava-common.yaml", {})
        statuses["lava-common"] = stack["StackStatus"]
        stack = create(
            cfn,
            f"lava-{REALM}",
            cfn_dir / "lava-realm.yaml",
            {"realm": REALM, "version": VERSION, "lavaBucketName": BUCKET, "tmpExpiryDays": "4"},
        )
        statuses[f"lava-{REALM}"] = stack["StackStatus"]
        subnet = ec2.describe_subnets()["Subnets"][0]
        group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        stack = create(
            cfn,
            f"lava-{REALM}-{WORKER}",
            cfn_dir / "lava-worker.yaml",
            {
                "realm": REALM,
                "worker": WORKER,
                "visibilityTimeout": "1800",
                "messageRetentionPeriod": "7200",
                "workerInstancesMin": "1",
                "workerInstancesDesired": "1",
                "workerInstancesMax": "2",
                "subnets": subnet["SubnetId"],
                "secGroups": group,
                "crontabDispatchers": "Main Other",
            },
        )
        statuses[f"lava-{REALM}-{WORKER}"] = stack["StackStatus"]
        summary["stacks"] = statuses

        # Tables: keys, indexes, TTL.
        realms = ddb.describe_table(TableName="lava.realms")["Table"]
        check(key_schema(realms["KeySchema"]) == [("realm", "HASH")], "lava.realms key")
        jobs = ddb.describe_table(TableName=f"lava.{REALM}.jobs")["Table"]
        check(key_schema(jobs["KeySchema"]) == [("job_id", "HASH")], "jobs key")
        gsi = {i["IndexName"]: i for i in jobs.get("GlobalSecondaryIndexes", [])}
        check("dispatcher-index" in gsi, f"jobs GSI: {list(gsi)}")
        check(
            key_schema(gsi["dispatcher-index"]["KeySchema"])
            == [("dispatcher", "HASH"), ("job_id", "RANGE")],
            "dispatcher-index keys",
        )
        events = ddb.describe_table(TableName=f"lava.{REALM}.events")["Table"]
        check(
            key_schema(events["KeySchema"]) == [("job_id", "HASH"), ("run_id", "RANGE")],
            "events keys",
        )
        lsi = {i["IndexName"]: i for i in events.get("LocalSecondaryIndexes", [])}
        check("job_id-tu_event-index" in lsi, f"events LSI: {list(lsi)}")
        triggers = ddb.describe_table(TableName=f"lava.{REALM}.s3triggers")["Table"]
        gsi = {i["IndexName"]: i for i in triggers.get("GlobalSecondaryIndexes", [])}
        check("s3trigger-index" in gsi, f"s3triggers GSI: {list(gsi)}")
        for table in ("connections", "state"):
            ddb.describe_table(TableName=f"lava.{REALM}.{table}")
        # moto ignores TimeToLiveSpecification and PITR: read the template.
        resources = cfn_yaml.load(str(cfn_dir / "lava-realm.yaml"))["Resources"]
        for resource, pitr in (("EventsTable", False), ("StateTable", True)):
            props = resources[resource]["Properties"]
            ttl = props.get("TimeToLiveSpecification", {})
            check(ttl == {"AttributeName": "ttl", "Enabled": True}, f"{resource} TTL: {ttl}")
            enabled = props.get("PointInTimeRecoverySpecification", {}).get(
                "PointInTimeRecoveryEnabled", False
            )
            check(enabled == pitr, f"{resource} PITR: {enabled}")
        summary["tables"] = sorted(ddb.list_tables()["TableNames"])

        # KMS aliases.
        aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
        for alias in (f"alias/lava-{REALM}-sys", f"alias/lava-{REALM}-user"):
            check(alias in aliases, f"missing {alias}")

        # Bucket and its tmp/ lifecycle.
        check(BUCKET in {b["Name"] for b in s3.list_buckets()["Buckets"]}, "realm bucket")
        enc = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
        algo = enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        check(algo == "aws:kms", f"bucket encryption: {enc}")
        # moto ignores LifecycleConfiguration from templates: read the template.
        bucket = resources["LavaBucket"]["Properties"]
        rules = bucket["LifecycleConfiguration"]["Rules"]
        tmp_rules = [r for r in rules if r.get("Prefix") == "tmp/"]
        check(
            len(tmp_rules) == 1 and tmp_rules[0]["ExpirationInDays"] == {"Ref": "tmpExpiryDays"},
            f"tmp/ lifecycle: {rules}",
        )
        check(
            bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True,
            "public access block",
        )

        # Topics.
        topics = {t["TopicArn"].rsplit(":", 1)[1] for t in sns.list_topics()["Topics"]}
        for topic in (f"lava-{REALM}-notices", f"lava-{REALM}-dispatch"):
            check(topic in topics, f"missing topic {topic}")

        # The worker queue and its dead-letter queue.
        url = sqs.get_queue_url(QueueName=f"lava-{REALM}-{WORKER}")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs["RedrivePolicy"])
        check(int(redrive["maxReceiveCount"]) == 10, f"maxReceiveCount: {redrive}")
        check(redrive["deadLetterTargetArn"].endswith(f":lava-{REALM}-{WORKER}-dlq"), "DLQ arn")
        check(attrs["VisibilityTimeout"] == "1800", f"visibility: {attrs}")
        check(attrs["MessageRetentionPeriod"] == "7200", f"retention: {attrs}")
        check(attrs.get("KmsMasterKeyId") == f"alias/lava-{REALM}-user", f"queue key: {attrs}")
        summary["queue"] = {
            k: attrs[k]
            for k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "KmsMasterKeyId")
        }

        # IAM: the realm's policies and the fleet's role.
        policies = {
            p["PolicyName"]: p
            for p in iam.list_policies(Scope="Local")["Policies"]
        }
        for name in (f"lava-{REALM}-worker", f"lava-{REALM}-dispatcher"):
            check(name in policies, f"missing policy {name}")

        def actions(policy_name):
            p = policies[policy_name]
            doc = iam.get_policy_version(
                PolicyArn=p["Arn"], VersionId=p["DefaultVersionId"]
            )["PolicyVersion"]["Document"]
            if isinstance(doc, str):
                doc = json.loads(doc)
            found = set()
            for st in doc["Statement"]:
                acts = st["Action"]
                found.update([acts] if isinstance(acts, str) else acts)
            return found

        worker_actions = actions(f"lava-{REALM}-worker")
        check("sqs:ChangeMessageVisibility" in worker_actions, "worker ChangeMessageVisibility")
        check("dynamodb:DeleteItem" not in worker_actions, "worker must not DeleteItem")
        dispatcher_actions = actions(f"lava-{REALM}-dispatcher")
        check(
            {"sqs:SendMessage", "sqs:GetQueueUrl", "dynamodb:GetItem", "dynamodb:Query"}
            <= dispatcher_actions,
            f"dispatcher actions: {dispatcher_actions}",
        )
        check("sqs:ReceiveMessage" not in dispatcher_actions, "dispatcher must not receive")
        role = iam.get_role(RoleName=f"lava-{REALM}-worker-{WORKER}")["Role"]
        # moto ignores ManagedPolicyArns: read the template.
        worker_tpl = cfn_yaml.load(str(cfn_dir / "lava-worker.yaml"))["Resources"]
        attached = worker_tpl["WorkerRole"]["Properties"]["ManagedPolicyArns"]
        check(
            {"Fn::ImportValue": {"Fn::Sub": "lava:${realm}:iamLavaWorkerPolicyArn"}} in attached,
            f"role policies: {attached}",
        )

        # Launch template user data and the auto-scaling group.
        versions = ec2.describe_launch_template_versions(
            LaunchTemplateName=f"lava-{REALM}-{WORKER}"
        )["LaunchTemplateVersions"]
        import base64

        user_data = base64.b64decode(versions[0]["LaunchTemplateData"]["UserData"]).decode()
        for expected in (
            f"s3://{BUCKET}/lava/packages/lava-{VERSION}.x86_64.rpm",
            "dnf install -y",
            "systemctl enable --now crond",
            f"/etc/lava/worker-{WORKER}.env",
            f"LAVA_REALM={REALM}",
            f"LAVA_WORKER={WORKER}",
            f"systemctl enable --now lava-worker@{WORKER}",
            "dispatchers='Main Other'",
            f"lava-crontab@{REALM}.timer",
        ):
            check(expected in user_data, f"user data lacks {expected!r}:\n{user_data}")
        groups = asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=[f"lava-{REALM}-{WORKER}"]
        )["AutoScalingGroups"]
        check(len(groups) == 1, "auto-scaling group")
        group = groups[0]
        check(group["MinSize"] == 1 and group["MaxSize"] == 2, f"ASG sizes: {group}")
        tags = {t["Key"]: t["Value"] for t in group["Tags"]}
        check(tags.get("Name") == f"lava-{REALM}-{WORKER}", f"ASG tags: {tags}")
        summary["asg_instances"] = len(group.get("Instances", []))

        exports = {e["Name"] for e in cfn.list_exports()["Exports"]}
        summary["exports"] = sorted(exports)
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: check_stacks.py CLOUDFORMATION_DIR")
    main(sys.argv[1])
