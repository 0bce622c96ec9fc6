//! End to end through the `topicd` binary: train, eval, classify, models, and bad input files.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn topicd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_topicd"))
        .args(args)
        .env_remove("TOPICD_MODEL_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("topicd runs")
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write fixture");
    path.to_string_lossy().into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn train_eval_classify_and_list_models() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write(dir.path(), "train.jsonl", &common::tiny_jsonl());
    let models = dir.path().join("models");
    let models = models.to_string_lossy().into_owned();

    let out = topicd(&["train", "--data", &data, "--out", &models]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("12 examples, 4 labels"), "{log}");
    assert!(log.contains("cross-validation"), "{log}");

    let out = topicd(&["eval", "--model", &models, "--data", &data, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in [
        "n",
        "accuracy",
        "macro_f1",
        "tags",
        "per_label",
        "confusion",
        "ece",
        "docs_per_second",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    for key in ["micro_f1", "macro_f1", "precision", "recall"] {
        assert!(report["tags"].get(key).is_some(), "missing tags.{key}");
    }
    assert_eq!(report["n"], 12);
    assert!(report["accuracy"].as_f64().unwrap_or(0.0) > 0.9, "{report}");

    let out = topicd(&[
        "classify",
        "--model",
        &models,
        "--json",
        "--explain",
        "--paragraphs",
        "Troops and artillery shelled the border villages overnight; soldiers returned fire and militants fled the army checkpoint.\n\nThe central bank raised interest rates.",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(c["label"], "security");
    assert_eq!(c["scores"].as_array().map(Vec::len), Some(4));
    assert!(c["model_version"]
        .as_str()
        .is_some_and(|v| v.starts_with('m')));
    assert_eq!(c["paragraphs"].as_array().map(Vec::len), Some(2));
    assert_eq!(c["paragraphs"][1]["label"], "economy");
    assert!(c["known_terms"].as_u64().is_some_and(|n| n > 0), "{c}");
    assert!(c["paragraphs"][1]["known_terms"]
        .as_u64()
        .is_some_and(|n| n > 0));
    assert!(c["explanation"].as_array().is_some_and(|e| !e.is_empty()));
    let tags: Vec<&str> = c["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(tags.first(), Some(&"security"));

    let out = topicd(&["models", "--model-dir", &models]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("* m"));

    // A single model file works as --model too.
    let file = dir.path().join("one.model");
    let file = file.to_string_lossy().into_owned();
    let out = topicd(&["train", "--data", &data, "--out", &file, "--folds", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = topicd(&["classify", "--model", &file, "carbon emissions and coal"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("label   climate"));
}

#[test]
fn bad_input_files_name_the_line_and_write_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("never.model");
    let out_arg = out_path.to_string_lossy().into_owned();
    let cases = [
        (
            "{\"text\": \"ok\", \"label\": \"a\"}\n{\"text\": \"broken\"\n",
            ":2: invalid JSON",
        ),
        (
            "{\"text\": \"ok\", \"label\": \"a\"}\n{\"label\": \"a\"}\n",
            ":2: missing \"text\"",
        ),
        (
            "{\"text\": \"ok\", \"label\": \"\"}\n",
            ":1: \"label\" is empty",
        ),
        ("{\"text\": \"ok\", \"labels\": []}\n", ":1: no label"),
        ("", "no examples"),
    ];
    for (contents, expected) in cases {
        let data = write(dir.path(), "bad.jsonl", contents);
        let out = topicd(&["train", "--data", &data, "--out", &out_arg]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("bad.jsonl") && err.contains(expected),
            "{expected}: {err}"
        );
        assert!(!out_path.exists(), "nothing is written");
    }
    let out = topicd(&["train", "--data", "/nonexistent/x.jsonl", "--out", &out_arg]);
    assert!(stderr(&out).contains("/nonexistent/x.jsonl: cannot read"));

    // A corrupted model file is refused with the reason.
    let data = write(dir.path(), "good.jsonl", &common::tiny_jsonl());
    let model = dir.path().join("m.model");
    let model_arg = model.to_string_lossy().into_owned();
    assert!(
        topicd(&["train", "--data", &data, "--out", &model_arg, "--folds", "0"])
            .status
            .success()
    );
    let mut bytes = std::fs::read(&model).expect("read model");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    std::fs::write(&model, bytes).expect("corrupt");
    let out = topicd(&["classify", "--model", &model_arg, "anything"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("checksum"), "{}", stderr(&out));
}
