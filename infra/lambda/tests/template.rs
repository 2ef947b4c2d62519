//! The deploy template (infra/deploy/template.yaml) against what the code writes: its state
//! machine is infra/deploy's ASL with the Task resources wired to the functions, and its
//! Athena table (and the DDL in infra/deploy/athena) has the Parquet schema the sink writes;
//! its roles grant `*` resources only where an action has no resource ARN.
//! (cfn-lint checks the template itself, in scripts/test-all.sh.)

#![allow(clippy::unwrap_used, missing_docs)]

use arrow_schema::{DataType, TimeUnit};
use serde_json::Value;
use shardline_core::schema::metric_schema;

const TEMPLATE: &str = include_str!("../../deploy/template.yaml");
const ASL: &str = include_str!("../../deploy/statemachine/pipeline.asl.json");
const DDL: &str = include_str!("../../deploy/athena/metrics.sql");

fn template() -> serde_yaml::Value {
    serde_yaml::from_str(TEMPLATE).unwrap()
}

fn resource<'a>(t: &'a serde_yaml::Value, name: &str) -> &'a serde_yaml::Value {
    &t["Resources"][name]
}

/// Athena's name for an Arrow type of the schema.
fn athena_type(t: &DataType) -> &'static str {
    match t {
        DataType::Utf8 => "string",
        DataType::Int64 => "bigint",
        DataType::Float64 => "double",
        DataType::Timestamp(TimeUnit::Millisecond, _) => "timestamp",
        other => panic!("no Athena type for {other}"),
    }
}

fn schema_columns() -> Vec<(String, String)> {
    metric_schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), athena_type(f.data_type()).to_string()))
        .collect()
}

#[test]
fn the_state_machine_is_the_asl_of_infra_deploy_wired_to_the_functions() {
    let t = template();
    let sm = &resource(&t, "PipelineStateMachine")["Properties"];
    let definition: Value = serde_json::to_value(&sm["Definition"]).unwrap();
    let mut text = definition.to_string();
    // The substitutions, resolved back to the seed's ARNs.
    for (var, arn) in [
        (
            "DataCollectorArn",
            "arn:aws:lambda:eu-west-1:190517931751:function:data-collector",
        ),
        (
            "PipelineHealthArn",
            "arn:aws:lambda:eu-west-1:190517931751:function:pipeline-health",
        ),
        (
            "MetricsAnalyzerArn",
            "arn:aws:lambda:eu-west-1:190517931751:function:metrics-analyzer",
        ),
        (
            "AlarmTopicArn",
            "arn:aws:sns:eu-west-1:190517931751:InfraMonitoring-Alarms",
        ),
    ] {
        let placeholder = format!("${{{var}}}");
        assert!(text.contains(&placeholder), "{var} is used");
        assert!(
            !sm["DefinitionSubstitutions"][var].is_null(),
            "{var} is substituted"
        );
        text = text.replace(&placeholder, arn);
    }
    let asl: Value = serde_json::from_str(ASL).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), asl);
    let trigger = &sm["Events"]["Trigger"]["Properties"];
    assert_eq!(trigger["Schedule"].as_str(), Some("rate(3 hours)"));
}

#[test]
fn the_glue_table_has_the_parquet_schema_and_day_partitions_with_projection() {
    let t = template();
    let input = &resource(&t, "MetricsTable")["Properties"]["TableInput"];
    let columns: Vec<(String, String)> = input["StorageDescriptor"]["Columns"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_string(),
                c["Type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(columns, schema_columns());
    let partitions: Vec<&str> = input["PartitionKeys"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect();
    assert_eq!(partitions, ["year", "month", "day"]);
    assert_eq!(
        input["Parameters"]["projection.enabled"].as_str(),
        Some("true")
    );
    assert!(
        input["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
            .as_str()
            .unwrap()
            .contains("ParquetHiveSerDe")
    );
}

#[test]
fn the_athena_ddl_has_the_parquet_schema() {
    let body = DDL
        .split("CREATE EXTERNAL TABLE")
        .nth(1)
        .and_then(|s| s.split_once('(').map(|(_, rest)| rest))
        .and_then(|s| s.split_once("\n)").map(|(cols, _)| cols))
        .unwrap();
    let columns: Vec<(String, String)> = body
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap().trim_matches('`').to_string();
            (name, parts.next().unwrap().to_lowercase())
        })
        .collect();
    assert_eq!(columns, schema_columns());
}

#[test]
fn every_function_is_deployed_with_its_mapping_log_group_and_own_role() {
    let t = template();
    for (logical, name, mapped) in [
        ("S3ParquetFunction", "s3-parquet", true),
        ("DynamodbFunction", "dynamodb", true),
        ("CloudwatchFunction", "cloudwatch", true),
        ("AlertsFunction", "alerts", true),
        ("DataCollectorFunction", "data-collector", false),
        ("PipelineHealthFunction", "pipeline-health", false),
        ("MetricsAnalyzerFunction", "metrics-analyzer", false),
    ] {
        let f = &resource(&t, logical)["Properties"];
        assert_eq!(f["FunctionName"].as_str(), Some(name));
        assert_eq!(
            f["CodeUri"].as_str(),
            Some(format!("build/{name}.zip").as_str())
        );
        let role = serde_json::to_string(&f["Role"]).unwrap();
        assert!(
            role.contains(&logical.replace("Function", "Role")),
            "{name}: its own role: {role}"
        );
        let group = logical.replace("Function", "LogGroup");
        assert_eq!(
            resource(&t, &group)["Properties"]["RetentionInDays"].as_u64(),
            Some(7)
        );
        let events = &f["Events"]["Stream"]["Properties"];
        assert_eq!(
            !events.is_null(),
            mapped,
            "{name}: a Kinesis mapping iff a sink"
        );
        if mapped {
            assert_eq!(
                events["FunctionResponseTypes"][0].as_str(),
                Some("ReportBatchItemFailures")
            );
            assert_eq!(events["BisectBatchOnFunctionError"].as_bool(), Some(true));
            assert!(!events["DestinationConfig"]["OnFailure"].is_null());
            // Sinks whose exactly-once state is per shard (manifest, watermarks, alarm
            // progress) take one batch per shard at a time.
            if name != "dynamodb" {
                assert_eq!(events["ParallelizationFactor"].as_u64(), Some(1), "{name}");
            }
        }
    }
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("x86_64"));
}

/// Every Allow statement of every role: (role, actions, resource as written).
fn statements(t: &serde_yaml::Value) -> Vec<(String, Vec<String>, serde_yaml::Value)> {
    let mut out = Vec::new();
    let resources = t["Resources"].as_mapping().unwrap();
    for (name, r) in resources {
        if r["Type"].as_str() != Some("AWS::IAM::Role") {
            continue;
        }
        for policy in r["Properties"]["Policies"].as_sequence().unwrap() {
            for st in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
                assert_eq!(st["Effect"].as_str(), Some("Allow"));
                let actions = match &st["Action"] {
                    serde_yaml::Value::String(a) => vec![a.clone()],
                    other => other
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_string())
                        .collect(),
                };
                out.push((
                    name.as_str().unwrap().to_string(),
                    actions,
                    st["Resource"].clone(),
                ));
            }
        }
    }
    out
}

/// Least privilege: a `*` resource only where the action has no resource-level permissions
/// (PutMetricData, GetMetricStatistics, vended log delivery), and nowhere else.
#[test]
fn only_actions_without_resource_arns_have_a_star_resource() {
    let t = template();
    let mut stars: Vec<(String, Vec<String>)> = statements(&t)
        .into_iter()
        .filter(|(_, _, resource)| {
            let text = serde_json::to_string(resource).unwrap();
            resource.as_str() == Some("*") || text.contains("\"*\"")
        })
        .map(|(role, actions, _)| (role, actions))
        .collect();
    stars.sort();
    let logs = [
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ];
    let expected = [
        ("CloudwatchRole", vec!["cloudwatch:PutMetricData"]),
        ("PipelineHealthRole", vec!["cloudwatch:GetMetricStatistics"]),
        ("StateMachineRole", logs.to_vec()),
    ]
    .map(|(role, actions)| {
        (
            role.to_string(),
            actions.into_iter().map(String::from).collect::<Vec<_>>(),
        )
    });
    assert_eq!(stars, expected);
}

/// pipeline-health as deployed reads the consumers' lag from Lambda's IteratorAge (the
/// consumers are the sink functions behind mappings; no lease table exists), and its role
/// allows what it calls in that mode and nothing more: the stream check at start, the
/// dead-letter listing, GetMetricStatistics.
#[test]
fn pipeline_health_reads_iterator_age_with_only_what_it_calls() {
    let t = template();
    let vars = &resource(&t, "PipelineHealthFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        vars["SHARDLINE__FLOW__LAG_SOURCE"].as_str(),
        Some("iterator-age")
    );
    let mut actions: Vec<String> = statements(&t)
        .into_iter()
        .filter(|(role, _, _)| role == "PipelineHealthRole")
        .flat_map(|(_, actions, _)| actions)
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "cloudwatch:GetMetricStatistics",
            "kinesis:DescribeStreamSummary",
            "kinesis:ListShards",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "s3:ListBucket",
        ]
    );
    // No lease table is deployed for it to read.
    let text = serde_json::to_string(&t["Resources"]).unwrap();
    assert!(
        !text.contains("leaseKey") && !text.contains("LeaseTable"),
        "no lease table"
    );
}

#[test]
fn the_sink_functions_run_on_aws_with_the_deployed_resources_names() {
    let t = template();
    for (logical, name) in [
        ("S3ParquetFunction", "s3-parquet"),
        ("DynamodbFunction", "dynamodb"),
        ("CloudwatchFunction", "cloudwatch"),
        ("AlertsFunction", "alerts"),
    ] {
        let vars = &resource(&t, logical)["Properties"]["Environment"]["Variables"];
        assert_eq!(vars["SHARDLINE_BACKEND"].as_str(), Some("aws"), "{name}");
        // `!Sub '...'`: every ${Resource} stands for that resource's name.
        let serde_yaml::Value::Tagged(sub) = &vars["SHARDLINE_FUNCTION_CONFIG"] else {
            panic!("{name}: SHARDLINE_FUNCTION_CONFIG is not a !Sub");
        };
        let mut text = sub.value.as_str().unwrap().to_string();
        while let Some(start) = text.find("${") {
            let end = start + text[start..].find('}').unwrap();
            let resource_name = text[start + 2..end].to_string();
            assert!(
                !resource(&t, &resource_name).is_null(),
                "{name}: ${{{resource_name}}} is not a resource"
            );
            text.replace_range(start..=end, &resource_name);
        }
        let config = shardline_lambda::FunctionConfig::from_json(&text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.consumer, name);
        assert_eq!(config.stream, "MetricsStream");
        assert_eq!(config.aws.resources.state_table, "StateTable", "{name}");
        assert_eq!(
            config.aws.resources.dead_letter_bucket, "DeadLetterBucket",
            "{name}"
        );
        match name {
            "s3-parquet" => assert_eq!(config.s3.bucket, "MetricsBucket"),
            "dynamodb" => assert_eq!(config.dynamodb.table, "InfraMetricsTable"),
            "alerts" => assert_eq!(config.alerts.topic, "AlarmTopic"),
            _ => {}
        }
    }
}
