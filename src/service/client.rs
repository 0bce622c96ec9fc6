//! A small client used by `topicd classify --addr`.

use crate::model::{
    Classification, ClassifyOptions, LabelScore, ParagraphClassification, TermWeight,
};
use crate::proto::topic_classifier_client::TopicClassifierClient;
use crate::proto::{self, ClassifyRequest};

fn scores(list: Vec<proto::LabelScore>) -> Vec<LabelScore<'static>> {
    list.into_iter()
        .map(|s| LabelScore {
            label: s.label.into(),
            probability: s.probability,
        })
        .collect()
}

/// The endpoint URI for `addr`: `HOST:PORT` means plaintext `http://HOST:PORT`.
fn endpoint(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// Classifies `text` on the server at `addr` (`HOST:PORT` or a URI); returns the classification and
/// the model version.
pub fn classify_remote(
    addr: &str,
    text: &str,
    options: ClassifyOptions,
) -> Result<(Classification<'static>, String), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut client = TopicClassifierClient::connect(endpoint(addr))
            .await
            .map_err(|e| {
                format!("cannot connect to {addr}: {e}; is `topicd serve` running there?")
            })?;
        let response = client
            .classify(ClassifyRequest {
                text: text.to_owned(),
                top_k: u32::try_from(options.top_k).unwrap_or(u32::MAX),
                explain: options.explain,
                paragraphs: options.paragraphs,
                model_version: String::new(),
            })
            .await
            .map_err(|s| format!("{addr}: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        let classification = Classification {
            label: response.label.into(),
            scores: scores(response.scores),
            tags: response.tags.into_iter().map(Into::into).collect(),
            explanation: response
                .explanation
                .into_iter()
                .map(|t| TermWeight {
                    term: t.term,
                    weight: t.weight,
                })
                .collect(),
            paragraphs: response
                .paragraphs
                .into_iter()
                .map(|p| ParagraphClassification {
                    start: p.start as usize,
                    end: p.end as usize,
                    label: p.label.into(),
                    tags: p.tags.into_iter().map(Into::into).collect(),
                    scores: scores(p.scores),
                    known_terms: p.known_terms as usize,
                })
                .collect(),
            known_terms: response.known_terms as usize,
        };
        Ok((classification, response.model_version))
    })
}
