"""Packages the guard for an Organization: infra/template.yaml transformed to plain
CloudFormation, with each function's code read from an S3 bucket the member
accounts can read, plus the function zips, in one directory.

Usage: python infra/org_package.py OUT_DIR [ZIP_DIR]   (without ZIP_DIR: the templates only)

A stack set with service-managed permissions cannot use a template that
references macros, and a transform is a macro hosted by CloudFormation ("Overview
of CloudFormation macros" and "Transform reference", AWS CloudFormation User
Guide), so the SAM transform runs here, offline, with aws-sam-translator. Each
AWS::Lambda::Function's Code becomes
    S3Bucket: !Sub ${ArtifactBucketPrefix}-${AWS::Region}
    S3Key: !Sub ${ArtifactPrefix}NAME.zip
with those two parameters added: Lambda reads a function's code from a bucket in
the function's own region, which may belong to another account ("FunctionCode",
AWS Lambda API Reference), so there is one bucket per region. Nothing is read from or sent to AWS.
"""

import json
import os
import shutil
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names its managed policies by ARN: nothing to look up."""

    def load(self):
        return {}


def main():
    out_dir = sys.argv[1]
    zip_dir = sys.argv[2] if len(sys.argv) > 2 else None
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "template.yaml"), encoding="utf-8") as f:
        template = yaml_parse(f.read())
    zips = {}
    # `cargo lambda build` writes each function's zip under its binary's name
    # (target/lambda/<Binary>/bootstrap.zip), the template's BuildProperties.Binary.
    binaries = {}
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            name = os.path.basename(props["CodeUri"].rstrip("/"))
            binaries[name] = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", name)
            props["CodeUri"] = f"s3://placeholder/{name}.zip"
    cfn = transform(template, {}, NoManagedPolicies())
    for resource in cfn["Resources"].values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        key = resource["Properties"]["Code"]["S3Key"]
        name = key[: -len(".zip")]
        zips[name] = f"{name}.zip"
        resource["Properties"]["Code"] = {
            "S3Bucket": {"Fn::Sub": "${ArtifactBucketPrefix}-${AWS::Region}"},
            "S3Key": {"Fn::Sub": "${ArtifactPrefix}" + zips[name]},
        }
    # The dead-letter queues SAM adds for the schedule and event rules say nothing
    # of encryption; say it: SQS-managed server-side encryption ("Encryption at
    # rest in Amazon SQS", Amazon SQS Developer Guide).
    for resource in cfn["Resources"].values():
        props = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::SQS::Queue" and "KmsMasterKeyId" not in props:
            props["SqsManagedSseEnabled"] = True
            resource.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", []).append(
                {
                    "id": "CKV_AWS_27",
                    "comment": "Encrypted with SQS-managed keys (SqsManagedSseEnabled); the check looks only for KmsMasterKeyId.",
                }
            )
    cfn["Parameters"]["ArtifactBucketPrefix"] = {
        "Type": "String",
        "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,40}$",
        "Description": "The zips are read from the bucket PREFIX-REGION of each region (Lambda reads code from a bucket in the function's own region); its policy lets the Organization read them (aws:PrincipalOrgID).",
    }
    cfn["Parameters"]["ArtifactPrefix"] = {
        "Type": "String",
        "Default": "dowguard/",
        "Description": "The key prefix of the zips in each bucket, ending in /.",
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "member.json"), "w", encoding="utf-8") as f:
        json.dump(cfn, f, indent=1, sort_keys=True)
        f.write("\n")
    missing = []
    copied = []
    for name, file in sorted(zips.items()) if zip_dir else []:
        source = os.path.join(zip_dir, binaries.get(name, name), "bootstrap.zip")
        if os.path.exists(source):
            shutil.copyfile(source, os.path.join(out_dir, file))
            copied.append(file)
        else:
            missing.append(source)
    shutil.copyfile(os.path.join(here, "org.yaml"), os.path.join(out_dir, "org.yaml"))
    print(f"{out_dir}/member.json  the member accounts' template (plain CloudFormation)")
    print(f"{out_dir}/org.yaml     the management account's stack set")
    for file in copied:
        print(f"{out_dir}/{file}")
    if missing:
        print("missing (run `make build` first): " + ", ".join(missing), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
