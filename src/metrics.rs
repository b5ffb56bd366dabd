//! A handful of counters exposed at `/metrics` in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
    duration_micros: AtomicU64,
    rate_limited: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, status: u16, micros: u64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
        self.duration_micros.fetch_add(micros, Ordering::Relaxed);
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP frontdesk_http_requests_total HTTP requests answered, by status class.\n\
             # TYPE frontdesk_http_requests_total counter\n",
        );
        let mut total = 0;
        for (i, counter) in self.requests.iter().enumerate() {
            let n = counter.load(Ordering::Relaxed);
            total += n;
            out.push_str(&format!(
                "frontdesk_http_requests_total{{class=\"{}xx\"}} {n}\n",
                i + 1
            ));
        }
        out.push_str(&format!(
            "# HELP frontdesk_http_request_duration_seconds_sum Time spent answering requests.\n\
             # TYPE frontdesk_http_request_duration_seconds_sum counter\n\
             frontdesk_http_request_duration_seconds_sum {:.6}\n\
             # HELP frontdesk_http_request_duration_seconds_count Requests timed.\n\
             # TYPE frontdesk_http_request_duration_seconds_count counter\n\
             frontdesk_http_request_duration_seconds_count {total}\n\
             # HELP frontdesk_rate_limited_total Requests refused by the rate limiter.\n\
             # TYPE frontdesk_rate_limited_total counter\n\
             frontdesk_rate_limited_total {}\n",
            self.duration_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.rate_limited.load(Ordering::Relaxed),
        ));
        out
    }
}

/// The outbox as the database has it at scrape time.
pub struct OutboxGauges {
    /// Rows per status, every status listed.
    pub by_status: Vec<(&'static str, u64)>,
    /// Age of the oldest pending email (reminders left out); 0 when none is pending.
    pub oldest_pending_seconds: f64,
}

/// Appends `frontdesk_outbox_messages{status}` and `frontdesk_outbox_oldest_pending_seconds`.
pub fn render_outbox(out: &mut String, gauges: &OutboxGauges) {
    out.push_str(
        "# HELP frontdesk_outbox_messages Outgoing emails in the outbox, by status.\n\
         # TYPE frontdesk_outbox_messages gauge\n",
    );
    for (status, n) in &gauges.by_status {
        out.push_str(&format!(
            "frontdesk_outbox_messages{{status=\"{status}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP frontdesk_outbox_oldest_pending_seconds Age of the oldest pending email \
         (reminders waiting for their time left out).\n\
         # TYPE frontdesk_outbox_oldest_pending_seconds gauge\n\
         frontdesk_outbox_oldest_pending_seconds {:.3}\n",
        gauges.oldest_pending_seconds
    ));
}

/// Appends `frontdesk_smtp_failures_total{kind}` from this instance's counts.
pub fn render_smtp_failures(out: &mut String, counts: &[(&str, u64)]) {
    out.push_str(
        "# HELP frontdesk_smtp_failures_total Failed SMTP delivery tries on this instance, by \
         kind (connect, timeout, greeting, tls, auth, connection; refused and rejected are \
         the server's 4xx and 5xx answers about one message).\n\
         # TYPE frontdesk_smtp_failures_total counter\n",
    );
    for (kind, n) in counts {
        out.push_str(&format!(
            "frontdesk_smtp_failures_total{{kind=\"{kind}\"}} {n}\n"
        ));
    }
}
