//! `gc`: the scheduled sweep. An EventBridge schedule (`infra/template.yaml`, parameter
//! `GcSchedule`, hourly by default) invokes it with a "Scheduled Event"; it runs
//! [`shared::admin::gc`], the same sweep as `imgbt gc`, logs one line saying what it removed, and
//! answers the report as JSON.
//!
//! The one function that uses `shared::admin` (shared/tests/module_cycles.rs keeps the request
//! handlers away from it): it serves no route and holds no request's key, and the sweep must be
//! the CLI's own code, not a second copy of it.
//!
//! Any other event is refused with an error, so that a misrouted invocation (an API Gateway
//! request, a test event) does not start a sweep.

use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;
use shared::Deps;
use shared::admin::{self, GcReport};

/// The members of an EventBridge event this function reads
/// (<https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html>); a
/// schedule's is `source: "aws.events"`, `detail-type: "Scheduled Event"`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScheduledEvent {
    #[serde(default)]
    pub id: Option<String>,
    pub source: String,
    pub detail_type: String,
    #[serde(default)]
    pub time: Option<String>,
}

pub const SOURCE: &str = "aws.events";
pub const DETAIL_TYPE: &str = "Scheduled Event";

/// Checks `event` is a scheduled event, sweeps, logs and answers the report.
pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let scheduled = scheduled(event.payload)?;
    let request_id = event.context.request_id;
    let report = match admin::gc(&*deps.db, &deps.clock, &*deps.blobs).await {
        Ok(report) => report,
        Err(err) => {
            tracing::error!(
                request_id,
                function = "gc",
                event_id = scheduled.id,
                cause = %err,
                "gc failed"
            );
            return Err(err.into());
        }
    };
    log(&request_id, &scheduled, &report);
    Ok(serde_json::to_value(&report)?)
}

/// The event as a scheduled event, or why it is not one.
pub fn scheduled(payload: Value) -> Result<ScheduledEvent, Error> {
    let event: ScheduledEvent = serde_json::from_value(payload).map_err(|e| {
        format!("gc runs on an EventBridge scheduled event; this one does not parse: {e}")
    })?;
    if event.source != SOURCE || event.detail_type != DETAIL_TYPE {
        return Err(format!(
            "gc runs on an EventBridge scheduled event (source {SOURCE:?}, detail-type \
             {DETAIL_TYPE:?}), not {:?}/{:?}",
            event.source, event.detail_type
        )
        .into());
    }
    Ok(event)
}

/// One line: the counts as fields, and the keys and ids themselves as one JSON text. Object
/// keys and upload ids only: the report holds no key, token or secret.
fn log(request_id: &str, event: &ScheduledEvent, report: &GcReport) {
    let counts = report.counts();
    let removed = serde_json::to_string(report).unwrap_or_default();
    let event_id = event.id.as_deref().unwrap_or_default();
    let scheduled_at = event.time.as_deref().unwrap_or_default();
    // One field list for both levels (tracing fixes a line's level where it is written).
    macro_rules! swept {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                request_id,
                function = "gc",
                event_id,
                scheduled_at,
                expired_uploads = counts.expired_uploads,
                deleted = counts.deleted,
                orphans = counts.orphans,
                completed_uploads = counts.completed_uploads,
                failed = counts.failed,
                removed,
                $message
            )
        };
    }
    if counts.failed > 0 {
        swept!(warn, "gc swept, some objects could not be removed");
    } else {
        swept!(info, "gc swept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_scheduled_event_is_accepted() {
        let event = json!({
            "version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-18T10:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/gc"], "detail": {}
        });
        assert_eq!(scheduled(event.clone()).unwrap().id.as_deref(), Some("e1"));
        let mut other = event.clone();
        other["detail-type"] = json!("EC2 Instance State-change Notification");
        let err = scheduled(other).unwrap_err().to_string();
        assert!(err.contains("Scheduled Event"), "{err}");
        let mut other = event;
        other["source"] = json!("aws.ec2");
        assert!(scheduled(other).is_err());
        let http = json!({ "version": "2.0", "routeKey": "GET /", "rawPath": "/" });
        let err = scheduled(http).unwrap_err().to_string();
        assert!(err.contains("does not parse"), "{err}");
    }
}
