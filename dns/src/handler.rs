//! The request handler hickory-server calls for every decoded query: checks the request's shape,
//! answers cluster names from the index, forwards the rest, and writes one response.
//!
//! Invariants:
//! - every decoded request gets exactly one response (malformed shapes get FORMERR / NOTIMP /
//!   REFUSED; hickory-server itself answers undecodable messages with FORMERR and drops those too
//!   short to carry a header);
//! - the index read lock is held only while records are built, never across an await;
//! - until both informers have listed once, cluster names answer SERVFAIL (not a false NXDOMAIN).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::answer::{self, Answer, Zone};
use crate::forward::Forwarder;
use crate::index::Index;
use crate::names::{Classified, classify};

/// Largest UDP response we send, whatever the client's EDNS buffer says (the common safe size).
const MAX_UDP_PAYLOAD: u16 = 1232;
/// Forwarded queries in flight at most; more get SERVFAIL at once, so a flood of outside names
/// (each waiting up to the upstream timeout) cannot pile up tasks without bound.
pub const MAX_FORWARDS_IN_FLIGHT: usize = 1024;
/// How many ExternalName CNAMEs are followed inside the cluster before giving up.
const MAX_CHASE: usize = 8;

/// State shared by the handler and the informers.
pub struct Shared {
    pub index: RwLock<Index>,
    pub zone: Zone,
    pub forwarder: Option<Forwarder>,
    /// Set once Services and EndpointSlices have both been listed.
    pub synced: AtomicBool,
    /// Permits for forwarded queries ([`MAX_FORWARDS_IN_FLIGHT`]).
    pub forward_slots: tokio::sync::Semaphore,
}

/// hickory-server's entry point into k1s's DNS.
#[derive(Clone)]
pub struct Handler(pub Arc<Shared>);

impl Shared {
    /// The answer for one question.
    pub async fn resolve(&self, owner: &Name, qtype: RecordType) -> Answer {
        let mut answer = self.resolve_once(owner, qtype).await;
        let mut hops = 0;
        while let Some(target) = answer.chase.take() {
            hops += 1;
            if hops > MAX_CHASE {
                break;
            }
            let next = self.resolve_once(&target, qtype).await;
            answer.answers.extend(next.answers);
            answer.additionals.extend(next.additionals);
            // The response code and SOA describe the last name of the chain (RFC 6604).
            answer.rcode = next.rcode;
            answer.soa = next.soa;
            answer.chase = next.chase;
        }
        answer
    }

    async fn resolve_once(&self, owner: &Name, qtype: RecordType) -> Answer {
        let lower = owner.to_lowercase().to_ascii();
        let local = match classify(&lower, &self.zone.domain) {
            Classified::Cluster(_) | Classified::Reverse(_)
                if !self.synced.load(Ordering::Acquire) =>
            {
                Some(Answer::error(ResponseCode::ServFail))
            }
            Classified::Cluster(name) => {
                let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
                Some(answer::cluster(&idx, &self.zone, owner, name, qtype))
            }
            Classified::Reverse(ip) => {
                let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
                answer::reverse(&idx, &self.zone, owner, ip, qtype)
            }
            Classified::Other => None,
        };
        match (local, &self.forwarder) {
            (Some(a), _) => a,
            (None, Some(f)) => match self.forward_slots.try_acquire() {
                Ok(_permit) => f.lookup(owner, qtype).await,
                Err(_) => Answer::error(ResponseCode::ServFail),
            },
            (None, None) => Answer::error(ResponseCode::ServFail),
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let answer = match check(request) {
            Err(code) => Answer::error(code),
            Ok((owner, qtype)) => self.0.resolve(owner, qtype).await,
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = answer.rcode;
        metadata.authoritative = answer.authoritative;
        metadata.recursion_available = true;

        let mut builder = MessageResponseBuilder::from_message_request(request);
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            e.set_version(0);
            e
        });
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            std::iter::empty(),
            answer.soa.iter(),
            answer.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "sending a DNS response failed");
                let mut meta = Metadata::response_from_request(&request.metadata);
                meta.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: meta,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// The single IN-class question of a standard query, or the response code refusing it.
fn check(request: &Request) -> Result<(&Name, RecordType), ResponseCode> {
    if request.metadata.message_type != MessageType::Query {
        return Err(ResponseCode::FormErr);
    }
    if request.metadata.op_code != OpCode::Query {
        return Err(ResponseCode::NotImp);
    }
    let [query] = request.queries.queries() else {
        return Err(ResponseCode::FormErr);
    };
    if query.query_class() != DNSClass::IN {
        return Err(ResponseCode::Refused);
    }
    match query.query_type() {
        // Zone transfers and dynamic updates are not served.
        RecordType::AXFR | RecordType::IXFR => Err(ResponseCode::Refused),
        qtype => Ok((query.original().name(), qtype)),
    }
}
