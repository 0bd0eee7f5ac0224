//! A validator of the JSON Schema subset that `docs/schema/*.schema.json`
//! use: `type` (one or a list), `const`, `enum`, `properties`, `required`,
//! `additionalProperties` (a boolean or a schema), `items`, `minimum`,
//! `maximum`, `exclusiveMinimum`, and `$ref` into `#/$defs`. Annotations
//! (`title`, `description`, `$schema`, `$id`) are ignored; any other
//! keyword fails validation, so the schemas cannot silently use more than
//! is checked. (A full validator crate would bring in a regex engine, URL
//! handling and an HTTP client for remote references the schemas don't
//! have.)
#![allow(dead_code)]

use serde_json::Value;

const ANNOTATIONS: [&str; 4] = ["title", "description", "$schema", "$id"];

/// Every way `doc` breaks `schema`, as `path: reason`.
pub fn validate(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, doc, "$", &mut errors);
    errors
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("unknown type `{other}` in the schema"),
    }
}

fn check(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        errors.push(format!("{path}: the schema is not an object: {schema}"));
        return;
    };
    for (key, rule) in s {
        match key.as_str() {
            k if ANNOTATIONS.contains(&k) || k == "$defs" => {}
            "$ref" => {
                let name = rule.as_str().and_then(|r| r.strip_prefix("#/$defs/")).expect("a #/$defs/ reference");
                let target = root["$defs"].get(name).unwrap_or_else(|| panic!("no $defs/{name}"));
                check(root, target, v, path, errors);
            }
            "type" => {
                let names: Vec<&str> = match rule {
                    Value::String(n) => vec![n.as_str()],
                    Value::Array(a) => a.iter().map(|n| n.as_str().expect("type names")).collect(),
                    _ => panic!("bad `type` {rule}"),
                };
                if !names.iter().any(|n| type_matches(n, v)) {
                    errors.push(format!("{path}: {v} is not of type {rule}"));
                }
            }
            "const" => {
                if v != rule {
                    errors.push(format!("{path}: {v} is not {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().expect("enum is a list").contains(v) {
                    errors.push(format!("{path}: {v} is not one of {rule}"));
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" => {
                let (Some(x), Some(bound)) = (v.as_f64(), rule.as_f64()) else { continue };
                let ok = match key.as_str() {
                    "minimum" => x >= bound,
                    "maximum" => x <= bound,
                    _ => x > bound,
                };
                if !ok {
                    errors.push(format!("{path}: {x} breaks {key} {bound}"));
                }
            }
            "required" => {
                let Some(obj) = v.as_object() else { continue };
                for name in rule.as_array().expect("required is a list") {
                    let name = name.as_str().expect("required names");
                    if !obj.contains_key(name) {
                        errors.push(format!("{path}: `{name}` is missing"));
                    }
                }
            }
            "properties" => {
                let Some(obj) = v.as_object() else { continue };
                for (name, sub) in rule.as_object().expect("properties is an object") {
                    if let Some(x) = obj.get(name) {
                        check(root, sub, x, &format!("{path}.{name}"), errors);
                    }
                }
            }
            "additionalProperties" => {
                let Some(obj) = v.as_object() else { continue };
                let known = s.get("properties").and_then(Value::as_object);
                for (name, x) in obj {
                    if known.is_some_and(|k| k.contains_key(name)) {
                        continue;
                    }
                    match rule {
                        Value::Bool(true) => {}
                        Value::Bool(false) => errors.push(format!("{path}: `{name}` is not in the schema")),
                        sub => check(root, sub, x, &format!("{path}.{name}"), errors),
                    }
                }
            }
            "items" => {
                let Some(items) = v.as_array() else { continue };
                for (i, x) in items.iter().enumerate() {
                    check(root, rule, x, &format!("{path}[{i}]"), errors);
                }
            }
            other => errors.push(format!("{path}: the schema uses `{other}`, which this validator does not check")),
        }
    }
}
