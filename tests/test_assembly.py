"""The cloud assembly reader: local names, Ref and GetAtt values, intrinsics, code, errors."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sandbox.assembly import ACCOUNT, DEFAULT_REGION, AssemblyError, Stack, read_assembly

FIXTURE = Path(__file__).parent / "fixtures" / "shop-assembly"
ENDPOINT = "http://127.0.0.1:4000"
ASSET = "asset.3f1c6a0e9b7d4c2a8e5f1b3d7a9c0e2f4b6d8a1c3e5f7b9d0a2c4e6f8b1d3a5c"


@pytest.fixture(scope="module")
def stacks() -> dict[str, Stack]:
    return {stack.name: stack for stack in read_assembly(FIXTURE, ENDPOINT)}


@pytest.fixture(scope="module")
def shop(stacks: dict[str, Stack]) -> Stack:
    return stacks["Shop"]


def write_assembly(
    directory: Path, resources: dict, *, name: str = "S", template: dict | None = None
) -> Path:
    """A one-stack assembly; `template` replaces the whole template when given."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "version": "55.0.0",
        "artifacts": {
            name: {
                "type": "aws:cloudformation:stack",
                "environment": "aws://unknown-account/unknown-region",
                "properties": {"templateFile": f"{name}.template.json"},
            }
        },
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    body = {"Resources": resources} if template is None else template
    (directory / f"{name}.template.json").write_text(json.dumps(body))
    return directory


def only_stack(directory: Path) -> Stack:
    (stack,) = read_assembly(directory, ENDPOINT)
    return stack


# -- stacks ---------------------------------------------------------------------------------


def test_every_stack_is_read_with_its_name_account_and_region(stacks: dict[str, Stack]) -> None:
    assert sorted(stacks) == ["Shop", "other-stack"]  # stackName wins over the artifact id
    shop, other = stacks["Shop"], stacks["other-stack"]
    assert (shop.account, shop.region) == (ACCOUNT, DEFAULT_REGION)  # environment-agnostic
    assert (other.account, other.region) == ("000000000000", "eu-west-1")  # always local account
    assert shop.directory == FIXTURE
    assert shop.template_file == FIXTURE / "Shop.template.json"


def test_resources_keep_type_properties_and_metadata(shop: Stack) -> None:
    meta = shop.resources["MetaFn"]
    assert meta.type == "AWS::Lambda::Function"
    assert meta.properties["FunctionName"] == "shop-meta"
    assert meta.metadata["aws:asset:path"] == "asset.meta"
    assert [r.logical_id for r in shop.of_type("AWS::Events::Rule")] == [
        "OrderCreatedRule",
        "NightlyRule",
    ]


def test_a_resource_whose_condition_is_false_is_left_out(shop: Stack) -> None:
    assert "ProdOnlyQueue" not in shop.resources
    with pytest.raises(AssemblyError, match="ProdOnlyQueue is left out by its Condition"):
        shop.ref("ProdOnlyQueue")


# -- Ref ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logical_id", "expected"),
    [
        ("OrdersTable", "Shop-OrdersTable"),  # default name: stack-logicalId
        ("NamedTable", "Shop-named"),  # TableName wins (here an Fn::Sub)
        ("OrderBus", "ShopOrderBus"),
        ("Dlq", "http://127.0.0.1:4000/000000000000/Shop-Dlq"),  # a queue's Ref is its URL
        ("Failures", "http://127.0.0.1:4000/000000000000/Shop-Failures.fifo"),
        ("OrderFn", "Shop-OrderFn"),
        ("MetaFn", "shop-meta"),
        ("OrderCreatedRule", "ShopOrderBus|Shop-OrderCreatedRule"),  # custom bus: "bus|rule"
        ("NightlyRule", "nightly"),  # default bus: the name
        ("OrderFnRole", "Shop-OrderFnRole"),
        ("ApiStage", "prod"),
    ],
)
def test_ref_returns_what_cloudformation_returns(
    shop: Stack, logical_id: str, expected: str
) -> None:
    assert shop.ref(logical_id) == expected


def test_api_gateway_ids_look_like_api_gateway_ids_and_are_stable(shop: Stack) -> None:
    ids = [shop.ref(lid) for lid in ("Api", "ApiOrder", "ApiItems", "ApiDeployment")]
    assert all(re.fullmatch(r"[a-z0-9]{10}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    again = {s.name: s for s in read_assembly(FIXTURE, ENDPOINT)}["Shop"]
    assert [again.ref(lid) for lid in ("Api", "ApiOrder", "ApiItems", "ApiDeployment")] == ids
    root = shop.get_att("Api", "RootResourceId")
    assert re.fullmatch(r"[a-z0-9]{10}", root) and root not in ids


def test_long_default_names_are_cut_to_the_service_limit_with_a_hash(tmp_path: Path) -> None:
    long_id = "Function" + "X" * 70
    stack = only_stack(
        write_assembly(
            tmp_path,
            {
                f"{long_id}A": {"Type": "AWS::Lambda::Function"},
                f"{long_id}B": {"Type": "AWS::Lambda::Function"},
                "Q" + "x" * 90: {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
            },
        )
    )
    a, b = stack.ref(f"{long_id}A"), stack.ref(f"{long_id}B")
    assert len(a) == len(b) == 64  # Lambda's limit
    assert a.startswith(f"S-{long_id}"[:55]) and a != b
    queue = stack.get_att("Q" + "x" * 90, "QueueName")
    assert len(queue) == 80 and queue.endswith(".fifo")  # SQS's limit, suffix kept
    assert only_stack(tmp_path).ref(f"{long_id}A") == a  # same assembly, same name


def test_ref_of_an_unknown_id_names_it_and_where(tmp_path: Path) -> None:
    stack = only_stack(
        write_assembly(
            tmp_path,
            {
                "Fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Environment": {"Variables": {"T": {"Ref": "Missing"}}}},
                }
            },
        )
    )
    with pytest.raises(AssemblyError) as error:
        stack.resolve(stack.resources["Fn"].properties, "Resources.Fn.Properties")
    assert str(error.value) == (
        f"{tmp_path / 'S.template.json'}: Resources.Fn.Properties.Environment.Variables.T: "
        "unknown logical id 'Missing'"
    )


# -- GetAtt -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logical_id", "attribute", "expected"),
    [
        ("OrdersTable", "Arn", "arn:aws:dynamodb:us-east-1:000000000000:table/Shop-OrdersTable"),
        ("OrderBus", "Arn", "arn:aws:events:us-east-1:000000000000:event-bus/ShopOrderBus"),
        ("OrderBus", "Name", "ShopOrderBus"),
        (
            "OrderCreatedRule",
            "Arn",
            "arn:aws:events:us-east-1:000000000000:rule/ShopOrderBus/Shop-OrderCreatedRule",
        ),
        ("NightlyRule", "Arn", "arn:aws:events:us-east-1:000000000000:rule/nightly"),
        ("OrderFn", "Arn", "arn:aws:lambda:us-east-1:000000000000:function:Shop-OrderFn"),
        ("Dlq", "Arn", "arn:aws:sqs:us-east-1:000000000000:Shop-Dlq"),
        ("Dlq", "QueueName", "Shop-Dlq"),
        ("Dlq", "QueueUrl", "http://127.0.0.1:4000/000000000000/Shop-Dlq"),
        ("OrderFnRole", "Arn", "arn:aws:iam::000000000000:role/Shop-OrderFnRole"),
    ],
)
def test_get_att_returns_local_arns_and_attributes(
    shop: Stack, logical_id: str, attribute: str, expected: str
) -> None:
    assert shop.get_att(logical_id, attribute) == expected


def test_arns_carry_the_stack_region(stacks: dict[str, Stack]) -> None:
    assert stacks["other-stack"].get_att("Table", "Arn") == (
        "arn:aws:dynamodb:eu-west-1:000000000000:table/other-stack-Table"
    )


def test_table_stream_arn_extends_the_table_arn(shop: Stack) -> None:
    table_arn = shop.get_att("OrdersTable", "Arn")
    assert shop.get_att("OrdersTable", "StreamArn").startswith(f"{table_arn}/stream/")


def test_an_unknown_attribute_is_an_error_naming_it(shop: Stack) -> None:
    with pytest.raises(AssemblyError) as error:
        shop.get_att("OrderFn", "SnapStartResponse")
    assert str(error.value) == (
        f"{FIXTURE / 'Shop.template.json'}: Fn::GetAtt OrderFn.SnapStartResponse: "
        "the sandbox does not know attribute 'SnapStartResponse' of AWS::Lambda::Function"
    )


# -- intrinsic functions --------------------------------------------------------------------


def test_a_function_environment_resolves_to_local_names(shop: Stack) -> None:
    props = shop.resolve(shop.resources["OrderFn"].properties)
    assert props["Environment"]["Variables"] == {  # PROD_ONLY: Fn::If chose AWS::NoValue
        "TABLE_NAME": "Shop-OrdersTable",
        "EVENTBUS_NAME": "ShopOrderBus",
        "QUEUE_URL": "http://127.0.0.1:4000/000000000000/Shop-Dlq",
    }
    assert props["Code"]["S3Bucket"] == "cdk-hnb659fds-assets-000000000000-us-east-1"
    assert props["MemorySize"] == "256"  # Fn::FindInMap with a parameter's default
    assert props["Role"] == "arn:aws:iam::000000000000:role/Shop-OrderFnRole"
    assert props["Timeout"] == 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}, "b"]]}, "a-us-east-1-b"),
        ({"Fn::Join": [",", {"Fn::Split": ["|", "x|y"]}]}, "x,y"),
        ({"Fn::Select": [1, ["a", "b", "c"]]}, "b"),
        ({"Fn::Select": ["0", {"Ref": "Zones"}]}, "a"),
        ({"Ref": "Zones"}, ["a", "b"]),  # CommaDelimitedList default
        ({"Ref": "Env"}, "dev"),
        ({"Fn::Sub": "${AWS::StackName}/${OrderBus}/${OrderBus.Arn}"},
         "Shop/ShopOrderBus/arn:aws:events:us-east-1:000000000000:event-bus/ShopOrderBus"),
        ({"Fn::Sub": ["${Greeting}, ${!Literal} in ${AWS::Partition}",
                      {"Greeting": {"Fn::Join": ["", ["hel", "lo"]]}}]},
         "hello, ${Literal} in aws"),
        ({"Fn::GetAtt": "Dlq.QueueName"}, "Shop-Dlq"),
        ({"Fn::If": ["DevInUsEast1", "dev-east", "other"]}, "dev-east"),
        ({"Fn::If": ["IsProd", "prod", "not-prod"]}, "not-prod"),
        ({"Fn::Base64": "hi"}, "aGk="),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"Ref": "AWS::AccountId"}, "000000000000"),
        (["keep", {"Ref": "AWS::NoValue"}, "also"], ["keep", "also"]),
        ({"a": {"Ref": "AWS::NoValue"}, "b": 1}, {"b": 1}),
        ({"Ref": "AWS::NoValue"}, None),
    ],
)
def test_resolve_intrinsic_functions(shop: Stack, value: object, expected: object) -> None:
    assert shop.resolve(value) == expected


def test_stack_id_is_a_cloudformation_stack_arn(shop: Stack) -> None:
    assert re.fullmatch(
        r"arn:aws:cloudformation:us-east-1:000000000000:stack/Shop/[0-9a-f]{32}",
        shop.resolve({"Ref": "AWS::StackId"}),
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Ref": "Secret"}, "parameter Secret has no Default"),
        ({"Fn::ImportValue": "x"}, "Fn::ImportValue is not supported by the sandbox"),
        ({"Fn::If": ["NoSuchCondition", 1, 2]}, "unknown condition 'NoSuchCondition'"),
        ({"Fn::Select": [5, ["a"]]}, "index 5 is not in a list of 1"),
        ({"Fn::FindInMap": ["Sizes", "prod", "Memory"]}, "Mappings has no Sizes.prod.Memory"),
        ({"Fn::Join": ["", "not a list"]}, "Fn::Join needs a list to join"),
    ],
)
def test_resolve_errors_say_what_and_where(shop: Stack, value: object, message: str) -> None:
    with pytest.raises(AssemblyError) as error:
        shop.resolve({"Here": value}, "Outputs.X.Value")
    assert str(error.value).startswith(f"{shop.template_file}: Outputs.X.Value.Here")
    assert message in str(error.value)


def test_a_name_that_refers_to_itself_is_an_error(tmp_path: Path) -> None:
    table = {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": {"Ref": "T"}}}
    stack = only_stack(write_assembly(tmp_path, {"T": table}))
    with pytest.raises(AssemblyError, match="the name of T refers to itself"):
        stack.ref("T")


# -- outputs ----------------------------------------------------------------------------------


def test_outputs_resolve_and_point_api_urls_at_the_local_endpoint(shop: Stack) -> None:
    assert shop.outputs_resolved() == {
        "ApiUrl": "http://127.0.0.1:4000/prod/",
        "BusArn": "arn:aws:events:us-east-1:000000000000:event-bus/ShopOrderBus",
        "Zones": "a,b",
        # ProdOnly is left out: its Condition is false
    }
    assert set(shop.outputs) == {"ApiUrl", "BusArn", "Zones", "ProdOnly"}  # raw outputs


# -- function code ----------------------------------------------------------------------------


def test_code_path_follows_the_assets_manifest(shop: Stack) -> None:
    path = shop.code_path("OrderFn")
    assert path == FIXTURE / ASSET
    assert (path / "app.py").is_file()


def test_code_path_falls_back_to_asset_path_metadata(shop: Stack) -> None:
    assert shop.code_path("MetaFn") == FIXTURE / "asset.meta"


@pytest.mark.parametrize(
    ("logical_id", "message"),
    [
        ("InlineFn", "inline code (Code.ZipFile) has no asset folder"),
        ("OrdersTable", "OrdersTable is a AWS::DynamoDB::Table, not a function or a layer"),
        ("Nope", "unknown logical id 'Nope'"),
    ],
)
def test_code_path_errors(shop: Stack, logical_id: str, message: str) -> None:
    with pytest.raises(AssemblyError) as error:
        shop.code_path(logical_id)
    assert str(error.value).startswith(
        f"{shop.template_file}: Resources.{logical_id}.Properties.Code: "
    )
    assert message in str(error.value)


def test_code_path_of_a_missing_asset_folder_is_an_error(tmp_path: Path) -> None:
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Code": {"S3Bucket": "b", "S3Key": "abc.zip"}},
        "Metadata": {"aws:asset:path": "asset.gone"},
    }
    stack = only_stack(write_assembly(tmp_path, {"Fn": function}))
    with pytest.raises(AssemblyError, match=r"asset folder .*asset\.gone does not exist"):
        stack.code_path("Fn")
    function["Metadata"] = {}
    stack = only_stack(write_assembly(tmp_path, {"Fn": function}))
    with pytest.raises(AssemblyError, match=r"S3Key 'abc\.zip' is not an asset of this assembly"):
        stack.code_path("Fn")


# -- assemblies the sandbox cannot read ---------------------------------------------------------


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match=r"no such folder \(synthesize the app first"):
        read_assembly(tmp_path / "cdk.out", ENDPOINT)


def test_a_folder_without_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError) as error:
        read_assembly(tmp_path, ENDPOINT)
    assert str(error.value) == f"{tmp_path}: no manifest.json, so not a CDK cloud assembly"


def test_malformed_json_names_the_file_and_line(tmp_path: Path) -> None:
    write_assembly(tmp_path, {"T": {"Type": "AWS::SQS::Queue"}})
    (tmp_path / "S.template.json").write_text('{\n  "Resources": {\n    "T": ,\n  }\n}\n')
    with pytest.raises(AssemblyError) as error:
        read_assembly(tmp_path, ENDPOINT)
    assert str(error.value).startswith(
        f"{tmp_path / 'S.template.json'}: line 3 column 10: malformed JSON: "
    )


def test_a_manifest_without_stacks_is_an_error(tmp_path: Path) -> None:
    manifest = {"artifacts": {"Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AssemblyError) as error:
        read_assembly(tmp_path, ENDPOINT)
    assert str(error.value) == (
        f"{tmp_path / 'manifest.json'}: no stack in it "
        "(no artifact of type aws:cloudformation:stack)"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (["not", "an", "object"], "S.template.json: the template is not a JSON object"),
        ({"Resources": {}}, "S.template.json: Resources is missing, empty or not an object"),
        (
            {"Resources": {"T": {"Properties": {}}}},
            "S.template.json: Resources.T: the resource has no Type",
        ),
        (
            {"Resources": {"T": "AWS::SQS::Queue"}},
            "S.template.json: Resources.T: a resource must be an object",
        ),
    ],
)
def test_templates_the_sandbox_cannot_read(tmp_path: Path, template: object, message: str) -> None:
    write_assembly(tmp_path, {}, template=template)  # type: ignore[arg-type]
    with pytest.raises(AssemblyError) as error:
        read_assembly(tmp_path, ENDPOINT)
    assert str(error.value) == f"{tmp_path}/{message}"


def test_a_template_file_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    write_assembly(tmp_path, {"T": {"Type": "AWS::SQS::Queue"}})
    (tmp_path / "S.template.json").unlink()
    with pytest.raises(AssemblyError, match=r"artifacts\.S: template file .*S\.template\.json"):
        read_assembly(tmp_path, ENDPOINT)


def test_stacks_of_a_nested_assembly_are_read(tmp_path: Path) -> None:
    write_assembly(tmp_path / "assembly-Prod", {"T": {"Type": "AWS::SQS::Queue"}}, name="Inner")
    manifest = {
        "artifacts": {
            "assembly-Prod": {
                "type": "cdk:cloud-assembly",
                "properties": {"directoryName": "assembly-Prod", "displayName": "Prod"},
            }
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (stack,) = read_assembly(tmp_path, ENDPOINT)
    assert stack.name == "Inner" and stack.directory == tmp_path / "assembly-Prod"


# -- the project's own synthesized app ------------------------------------------------------------


def test_the_synthesized_app_resolves_completely(synthesized_app: Any) -> None:
    for stack in read_assembly(synthesized_app.assembly_dir, ENDPOINT):
        for resource in stack.resources.values():
            stack.resolve(resource.properties, f"Resources.{resource.logical_id}.Properties")
        for function in stack.of_type("AWS::Lambda::Function"):
            assert stack.code_path(function.logical_id).is_dir()
        stack.outputs_resolved()
