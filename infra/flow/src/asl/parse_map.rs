//! Reading a Map state's fields: the item processor and its mode, where items come from
//! (`ItemsPath`, `Items`, `ItemReader`), `ItemSelector`, `ItemBatcher`, `ResultWriter`,
//! `MaxConcurrency`, the tolerated failure thresholds and `Label`.
//!
//! Rules checked here (AWS's): a field and its `…Path` form are exclusive; `ItemReader`,
//! `ItemBatcher`, `ResultWriter` and the tolerated failure fields need a `DISTRIBUTED`
//! processor; `ToleratedFailurePercentage` is 0–100; `Label` has at most 40 characters and
//! none of `<>{}[]?*"#%\^|~`$&,;:/`; a CSV reader's delimiter is one of AWS's names.

use super::fields::Fields;
use super::model::*;
use super::parse::parse_machine;
use crate::jsonpath::JsonPath;
use serde_json::Value;

/// The S3 resources an `ItemReader` may use.
pub const LIST_OBJECTS: &str = "arn:aws:states:::s3:listObjectsV2";
/// `s3:getObject`, reading one object (JSON, JSONL or CSV).
pub const GET_OBJECT: &str = "arn:aws:states:::s3:getObject";
/// `s3:putObject`, the `ResultWriter` resource.
pub const PUT_OBJECT: &str = "arn:aws:states:::s3:putObject";

pub(super) fn parse_map(f: &mut Fields<'_, '_>) -> Option<MapState> {
    let obj = f.obj;
    let (pf, pv) = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
        (Some(p), None) => ("ItemProcessor", p),
        (None, Some(p)) => ("Iterator", p),
        (Some(_), Some(_)) => {
            return f.err("Iterator", "cannot be combined with \"ItemProcessor\"");
        }
        (None, None) => {
            return f.err("ItemProcessor", "is required (or the legacy \"Iterator\")");
        }
    };
    if obj.contains_key("ItemSelector") && obj.contains_key("Parameters") {
        return f.err("Parameters", "cannot be combined with \"ItemSelector\"");
    }
    let distributed = match pv.get("ProcessorConfig").map(|c| c.get("Mode")) {
        None | Some(None) => false,
        Some(Some(Value::String(m))) if m == "INLINE" => false,
        Some(Some(Value::String(m))) if m == "DISTRIBUTED" => true,
        Some(Some(m)) => {
            return f.err(
                &format!("{pf}.ProcessorConfig.Mode"),
                &format!("must be \"INLINE\" or \"DISTRIBUTED\", got {m}"),
            );
        }
    };
    let items_path = match obj.get("ItemsPath") {
        None => JsonPath::parse("$").ok()?,
        Some(_) => f.path("ItemsPath", true)?,
    };
    let items = match obj.get("Items") {
        None => None,
        Some(v @ Value::Array(_)) => {
            f.template("Items");
            Some(v.clone())
        }
        Some(Value::String(_)) => f.expr("Items").map(|_| obj["Items"].clone()),
        Some(v) => f.err(
            "Items",
            &format!("must be an array or a JSONata expression, got {v}"),
        ),
    };
    let item_selector = f
        .template("ItemSelector")
        .or_else(|| f.template("Parameters"));
    let max_concurrency = f
        .count("MaxConcurrency", "MaxConcurrencyPath")
        .unwrap_or(Count::Fixed(0.0));
    let tolerated_count = f.count("ToleratedFailureCount", "ToleratedFailureCountPath");
    let tolerated_percentage = f.count(
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
    );
    if let Some(Count::Fixed(p)) = &tolerated_percentage
        && *p > 100.0
    {
        f.err::<()>("ToleratedFailurePercentage", "must be between 0 and 100");
    }
    let label = f.string("Label");
    if let Some(l) = &label
        && (l.chars().count() > 40
            || l.chars()
                .any(|c| "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c) || c.is_whitespace()))
    {
        f.err::<()>(
            "Label",
            "must be at most 40 characters without spaces or any of <>{}[]?*\"#%\\^|~`$&,;:/",
        );
    }
    let item_reader = obj.get("ItemReader").and_then(|v| item_reader(f, v));
    let item_batcher = obj.get("ItemBatcher").and_then(|v| item_batcher(f, v));
    let result_writer = obj.get("ResultWriter").and_then(|v| result_writer(f, v));
    if !distributed {
        for k in [
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
        ] {
            if obj.contains_key(k) {
                f.err::<()>(
                    k,
                    "needs a distributed Map: set ItemProcessor.ProcessorConfig.Mode to \"DISTRIBUTED\"",
                );
            }
        }
    }
    let io = Io {
        parameters: None,
        ..f.io_without_parameters()
    };
    let processor = parse_machine(pv, Some(f.state), pf, f.lang, f.errs)?;
    Some(MapState {
        processor,
        distributed,
        items_path,
        items,
        item_selector,
        max_concurrency,
        tolerated_count,
        tolerated_percentage,
        item_reader,
        item_batcher,
        result_writer,
        label,
        io,
    })
}

fn sub<'a: 'v, 'v, 'e>(
    f: &'e mut Fields<'a, '_>,
    v: &'v Value,
    field: &str,
) -> Option<Fields<'v, 'e>> {
    match v.as_object() {
        Some(obj) => Some(Fields {
            state: f.state,
            obj,
            errs: f.errs,
            lang: f.lang,
        }),
        None => f.err(field, "must be a JSON object"),
    }
}

fn params_field(f: &Fields<'_, '_>) -> &'static str {
    match f.lang {
        QueryLanguage::JsonPath => "Parameters",
        QueryLanguage::Jsonata => "Arguments",
    }
}

fn item_reader(f: &mut Fields<'_, '_>, v: &Value) -> Option<ItemReader> {
    let pname = params_field(f);
    let mut r = sub(f, v, "ItemReader")?;
    for k in r.obj.keys() {
        if !["Resource", pname, "ReaderConfig"].contains(&k.as_str()) {
            r.err::<()>(&format!("ItemReader.{k}"), "unknown field");
        }
    }
    let resource = r.string("Resource").or_else(|| {
        r.err(
            "ItemReader.Resource",
            "is required (s3:listObjectsV2 or s3:getObject)",
        )
    })?;
    let parameters = r.template(pname).or_else(|| {
        r.err(
            &format!("ItemReader.{pname}"),
            "is required (Bucket and Key or Prefix)",
        )
    })?;
    let config = r.obj.get("ReaderConfig").cloned().unwrap_or(Value::Null);
    let input_type = config.get("InputType").and_then(Value::as_str);
    let format = match (resource.as_str(), input_type) {
        (LIST_OBJECTS, None) => ReaderFormat::ListObjects,
        (GET_OBJECT, Some("JSON")) => ReaderFormat::Json,
        (GET_OBJECT, Some("JSONL")) => ReaderFormat::JsonLines,
        (GET_OBJECT, Some("CSV")) => {
            let delimiter = match config.get("CSVDelimiter").and_then(Value::as_str) {
                None | Some("COMMA") => ',',
                Some("PIPE") => '|',
                Some("SEMICOLON") => ';',
                Some("SPACE") => ' ',
                Some("TAB") => '\t',
                Some(d) => {
                    return r.err(
                        "ItemReader.ReaderConfig.CSVDelimiter",
                        &format!("{d:?} is not COMMA, PIPE, SEMICOLON, SPACE or TAB"),
                    );
                }
            };
            let headers = match config.get("CSVHeaderLocation").and_then(Value::as_str) {
                None | Some("FIRST_ROW") => None,
                Some("GIVEN") => match config.get("CSVHeaders").and_then(Value::as_array) {
                    Some(h) => Some(
                        h.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                    ),
                    None => {
                        return r.err(
                            "ItemReader.ReaderConfig.CSVHeaders",
                            "is required when CSVHeaderLocation is GIVEN",
                        );
                    }
                },
                Some(l) => {
                    return r.err(
                        "ItemReader.ReaderConfig.CSVHeaderLocation",
                        &format!("{l:?} is not FIRST_ROW or GIVEN"),
                    );
                }
            };
            ReaderFormat::Csv { headers, delimiter }
        }
        (GET_OBJECT, other) => {
            return r.err(
                "ItemReader.ReaderConfig.InputType",
                &format!("must be JSON, JSONL or CSV for s3:getObject, got {other:?}"),
            );
        }
        (other, _) => {
            return r.err(
                "ItemReader.Resource",
                &format!("{other:?} is not {LIST_OBJECTS} or {GET_OBJECT}"),
            );
        }
    };
    let max_items = match config.as_object() {
        Some(c) => {
            let mut cf = Fields {
                state: r.state,
                obj: c,
                errs: r.errs,
                lang: r.lang,
            };
            cf.count("MaxItems", "MaxItemsPath")
        }
        None => None,
    };
    Some(ItemReader {
        resource,
        parameters,
        format,
        max_items,
    })
}

fn item_batcher(f: &mut Fields<'_, '_>, v: &Value) -> Option<ItemBatcher> {
    let mut b = sub(f, v, "ItemBatcher")?;
    for k in b.obj.keys() {
        if ![
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
            "BatchInput",
        ]
        .contains(&k.as_str())
        {
            b.err::<()>(&format!("ItemBatcher.{k}"), "unknown field");
        }
    }
    let max_items = b.count("MaxItemsPerBatch", "MaxItemsPerBatchPath");
    let max_bytes = b.count("MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath");
    if max_items.is_none() && max_bytes.is_none() {
        return b.err(
            "ItemBatcher",
            "needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their …Path forms)",
        );
    }
    let batch_input = b.template("BatchInput");
    Some(ItemBatcher {
        max_items,
        max_bytes,
        batch_input,
    })
}

fn result_writer(f: &mut Fields<'_, '_>, v: &Value) -> Option<ResultWriter> {
    let pname = params_field(f);
    let mut w = sub(f, v, "ResultWriter")?;
    for k in w.obj.keys() {
        if !["Resource", pname, "WriterConfig"].contains(&k.as_str()) {
            w.err::<()>(&format!("ResultWriter.{k}"), "unknown field");
        }
    }
    let resource = w.string("Resource")?;
    if resource != PUT_OBJECT {
        return w.err(
            "ResultWriter.Resource",
            &format!("must be {PUT_OBJECT}, got {resource:?}"),
        );
    }
    let parameters = w.template(pname).or_else(|| {
        w.err(
            &format!("ResultWriter.{pname}"),
            "is required (Bucket and Prefix)",
        )
    })?;
    Some(ResultWriter {
        resource,
        parameters,
    })
}
