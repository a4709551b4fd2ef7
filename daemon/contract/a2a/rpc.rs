//! The JSON-RPC 2.0 envelope of A2A: which method a request names, in which protocol version
//! (v1.0's `SendMessage`, `GetTask`... or v0.3's `message/send`, `tasks/get`...: the name
//! tells, so an old caller keeps its shapes), and the error codes the A2A spec names.

use serde_json::{json, Value};

/// The protocol version whose shapes a call speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V03,
}

/// The A2A methods baton serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Send,
    Get,
    Cancel,
    PushSet,
    PushGet,
    PushList,
    PushDelete,
    /// `SendStreamingMessage`: `Send`, answered as a stream of the task's updates.
    Stream,
    /// `SubscribeToTask`: the stream of an existing task's updates.
    Subscribe,
    /// `ListTasks`: the caller's own tasks, filtered and paged.
    List,
}

impl Method {
    /// The method's v1.0 name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Send => "SendMessage",
            Method::Get => "GetTask",
            Method::Cancel => "CancelTask",
            Method::PushSet => "CreateTaskPushNotificationConfig",
            Method::PushGet => "GetTaskPushNotificationConfig",
            Method::PushList => "ListTaskPushNotificationConfigs",
            Method::PushDelete => "DeleteTaskPushNotificationConfig",
            Method::Stream => "SendStreamingMessage",
            Method::Subscribe => "SubscribeToTask",
            Method::List => "ListTasks",
        }
    }

    /// Whether the method is answered with a Server-Sent Events stream, not one JSON answer.
    pub fn streams(self) -> bool {
        matches!(self, Method::Stream | Method::Subscribe)
    }
}

/// Every JSON-RPC method name baton serves, with the method and version it stands for (the
/// OpenAPI document lists these names, so it cannot drift from what is served).
pub const METHODS: &[(&str, Method, Version)] = &[
    ("SendMessage", Method::Send, Version::V1),
    ("SendStreamingMessage", Method::Stream, Version::V1),
    ("GetTask", Method::Get, Version::V1),
    ("ListTasks", Method::List, Version::V1),
    ("CancelTask", Method::Cancel, Version::V1),
    ("SubscribeToTask", Method::Subscribe, Version::V1),
    (
        "CreateTaskPushNotificationConfig",
        Method::PushSet,
        Version::V1,
    ),
    (
        "GetTaskPushNotificationConfig",
        Method::PushGet,
        Version::V1,
    ),
    (
        "ListTaskPushNotificationConfigs",
        Method::PushList,
        Version::V1,
    ),
    (
        "DeleteTaskPushNotificationConfig",
        Method::PushDelete,
        Version::V1,
    ),
    ("message/send", Method::Send, Version::V03),
    ("message/stream", Method::Stream, Version::V03),
    ("tasks/get", Method::Get, Version::V03),
    ("tasks/cancel", Method::Cancel, Version::V03),
    ("tasks/resubscribe", Method::Subscribe, Version::V03),
    (
        "tasks/pushNotificationConfig/set",
        Method::PushSet,
        Version::V03,
    ),
    (
        "tasks/pushNotificationConfig/get",
        Method::PushGet,
        Version::V03,
    ),
    (
        "tasks/pushNotificationConfig/list",
        Method::PushList,
        Version::V03,
    ),
    (
        "tasks/pushNotificationConfig/delete",
        Method::PushDelete,
        Version::V03,
    ),
];

/// The method and version a JSON-RPC method name stands for; `None`: not served.
pub fn method(name: &str) -> Option<(Method, Version)> {
    METHODS
        .iter()
        .find(|(served, _, _)| *served == name)
        .map(|&(_, method, version)| (method, version))
}

/// An A2A error, by the code the spec gives it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    MethodNotFound(String),
    #[error("{0}")]
    InvalidParams(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    TaskNotFound(String),
    #[error("{0}")]
    TaskNotCancelable(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    ContentTypeNotSupported(String),
}

impl RpcError {
    pub fn code(&self) -> i64 {
        match self {
            RpcError::Parse(_) => -32700,
            RpcError::InvalidRequest(_) => -32600,
            RpcError::MethodNotFound(_) => -32601,
            RpcError::InvalidParams(_) => -32602,
            RpcError::Internal(_) => -32603,
            RpcError::TaskNotFound(_) => -32001,
            RpcError::TaskNotCancelable(_) => -32002,
            RpcError::UnsupportedOperation(_) => -32004,
            RpcError::ContentTypeNotSupported(_) => -32005,
        }
    }
}

/// A success answer to request `id`.
pub fn result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error answer to request `id` (`null` when the request's id could not be read).
pub fn error(id: &Value, e: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": e.code(), "message": e.to_string() } })
}

/// A request read: its id (echoed in every answer), method and params.
#[derive(Debug)]
pub struct Request {
    pub id: Value,
    pub method: Method,
    pub version: Version,
    pub params: Value,
}

/// Reads a JSON-RPC request body; the error carries the id to answer with.
pub fn request(body: &[u8]) -> Result<Request, (Value, RpcError)> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        (
            Value::Null,
            RpcError::Parse(format!("the body is not JSON: {e}")),
        )
    })?;
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    // JSON-RPC 2.0 §4 (and A2A, which types it string or integer): an id is a string, an
    // integer or null. Any other is not echoed, the answer's id is null: an object or a bool
    // is no id, and a fraction or an integer past 64 bits would come back changed (read as
    // a float), so the caller could not match the answer to its request.
    if !(id.is_string() || id.is_i64() || id.is_u64() || id.is_null()) {
        return Err((
            Value::Null,
            RpcError::InvalidRequest(
                "the request's \"id\" must be a string, a 64-bit integer or null".into(),
            ),
        ));
    }
    let invalid = |m: &str| (id.clone(), RpcError::InvalidRequest(m.to_string()));
    if v.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid(
            "a JSON-RPC 2.0 request object needs \"jsonrpc\": \"2.0\"",
        ));
    }
    let name = v
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the request names no \"method\""))?;
    let (method, version) = method(name).ok_or_else(|| {
        (
            id.clone(),
            RpcError::MethodNotFound(format!(
                "baton serves no method \"{name}\": SendMessage, SendStreamingMessage, GetTask, ListTasks, CancelTask, SubscribeToTask and the *TaskPushNotificationConfig methods (v1.0), or message/send, message/stream, tasks/get, tasks/cancel, tasks/resubscribe, tasks/pushNotificationConfig/* (v0.3)"
            )),
        )
    })?;
    let params = v.get("params").cloned().unwrap_or(json!({}));
    if !params.is_object() {
        return Err((
            id,
            RpcError::InvalidParams("\"params\" must be an object".into()),
        ));
    }
    Ok(Request {
        id,
        method,
        version,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_request_is_answered_with_its_id() {
        let (id, e) = request(br#"{"jsonrpc":"2.0","id":7,"method":"nope"}"#).unwrap_err();
        assert_eq!((id, e.code()), (json!(7), -32601));
        let (id, e) = request(b"{").unwrap_err();
        assert_eq!((id, e.code()), (Value::Null, -32700));
        let r = request(br#"{"jsonrpc":"2.0","id":"a","method":"tasks/get","params":{"id":"k"}}"#)
            .unwrap();
        assert_eq!((r.method, r.version), (Method::Get, Version::V03));
        // An id that is no id, or one that would come back changed, is answered with null.
        for body in [
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"GetTask"}"#,
            r#"{"jsonrpc":"2.0","id":true,"method":"GetTask"}"#,
            r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"GetTask"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"GetTask"}"#,
        ] {
            let (id, e) = request(body.as_bytes()).unwrap_err();
            assert_eq!((id, e.code()), (Value::Null, -32600), "{body}");
        }
        let r = request(br#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"GetTask"}"#);
        assert_eq!(r.unwrap().id, json!(u64::MAX));
    }
}
