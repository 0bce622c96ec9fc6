//! Small labeled corpora written for the tests.

#![allow(dead_code)]

use topicd::model::Example;

/// A tiny four-topic corpus: three short texts per topic.
pub const TINY: &[(&str, &str)] = &[
    ("security", "Troops crossed the border overnight and artillery shelled the northern villages."),
    ("security", "The defence ministry confirmed a ballistic missile test over the eastern sea."),
    ("security", "Militants attacked an army checkpoint; soldiers returned fire and the insurgents fled."),
    ("economy", "The central bank raised interest rates to curb inflation as consumer prices climbed."),
    ("economy", "Quarterly growth slowed while unemployment rose and the currency weakened against the dollar."),
    ("economy", "Exports jumped and the trade surplus widened as factories reported record orders."),
    ("climate", "Record heatwaves and drought linked to global warming scorched farms across the region."),
    ("climate", "The summit agreed to cut carbon emissions and phase out coal power by the next decade."),
    ("climate", "Rising sea levels and melting glaciers threaten coastal cities, climate scientists warned."),
    ("sanctions", "The treasury froze the assets of three banks and imposed sanctions on shipping firms."),
    ("sanctions", "Export controls on chips and an arms embargo were extended against the regime."),
    ("sanctions", "Officials were hit with travel bans and asset freezes for evading the oil embargo."),
];

/// The tiny corpus as examples.
pub fn tiny_examples() -> Vec<Example> {
    TINY.iter()
        .map(|(label, text)| Example {
            text: (*text).to_owned(),
            labels: vec![(*label).to_owned()],
        })
        .collect()
}

/// The tiny corpus as JSON Lines.
pub fn tiny_jsonl() -> String {
    TINY.iter()
        .map(|(label, text)| serde_json::json!({"text": text, "label": label}).to_string() + "\n")
        .collect()
}
