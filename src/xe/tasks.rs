//! The hand-written commands about tasks, events and users (`cli_operations.ml`): `task-cancel`,
//! `event-wait`, `user-password-change`, `subject-role-add`/`-remove`.

use serde_json::Value as Json;

use super::api::s;
use super::argv::Params;
use super::failure::XeError;
use super::generic::{internal, STD_PARAMS};
use super::records::{self, Obj};
use super::table::{hand, Spec};
use super::Ctx;

pub const COMMANDS: &[Spec] = &[
    hand("task-cancel", &["uuid"], &[], "Ask a running task to stop.", task_cancel),
    hand(
        "event-wait",
        &["class"],
        &[],
        "Wait until an object of the class has field=value (field=/=value: differs) for every condition given.",
        event_wait,
    ),
    hand("user-password-change", &["new"], &["old"], "Change the password of the logged-in user.", password_change),
    hand("subject-role-add", &["uuid"], &["role-name", "role-uuid"], "Give a subject a role.", role_add),
    hand("subject-role-remove", &["uuid"], &["role-name", "role-uuid"], "Take a role from a subject.", role_remove),
];

fn task_cancel(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let task = records::ref_by_uuid(&ctx.api, "task", params.req("uuid")?)?;
    ctx.api.call("task.cancel", vec![s(&task)])?;
    Ok(())
}

/// The classes `event-wait` follows (`cli_operations.ml` `event_wait_gen`).
const EVENT_CLASSES: &[(&str, &str)] = &[
    ("vm", "VM"),
    ("vdi", "VDI"),
    ("sr", "SR"),
    ("host", "host"),
    ("network", "network"),
    ("vif", "VIF"),
    ("pif", "PIF"),
    ("vbd", "VBD"),
    ("pbd", "PBD"),
    ("pool", "pool"),
    ("task", "task"),
    ("secret", "secret"),
    ("vmss", "VMSS"),
];

/// `field=value` (equal) or `field=/=value` (differs).
struct Condition {
    field: String,
    value: String,
    equal: bool,
}

fn satisfied(ctx: &mut Ctx, obj: &Obj, conditions: &[Condition]) -> Result<bool, XeError> {
    for c in conditions {
        let field = obj
            .facts()
            .fields
            .iter()
            .find(|f| f.name == c.field)
            .ok_or_else(|| internal(format!("key missing: {}", c.field)))?;
        let value = obj.get(&ctx.api, &mut ctx.res, field)?;
        if (value == c.value) != c.equal {
            return Ok(false);
        }
    }
    Ok(true)
}

fn event_wait(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let cli = params.req("class")?;
    let class = EVENT_CLASSES
        .iter()
        .find(|(c, _)| *c == cli)
        .map(|(_, c)| *c)
        .ok_or_else(|| internal(format!("Cli listening for class '{cli}' not currently implemented")))?;
    let conditions: Vec<Condition> = params
        .0
        .iter()
        .filter(|(k, _)| k != "class" && !STD_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| match v.strip_prefix("/=") {
            Some(rest) => Condition { field: k.clone(), value: rest.to_string(), equal: false },
            None => Condition { field: k.clone(), value: v.clone(), equal: true },
        })
        .collect();
    // The token first, so that nothing between the poll and the first wait is missed.
    let start = ctx.api.call("event.from", vec![Json::Array(vec![s(class)]), s(""), Json::from(0.0)])?;
    let mut token = start.get("token").and_then(Json::as_str).unwrap_or("").to_string();
    for obj in records::all(&ctx.api, &mut ctx.res, class)? {
        if satisfied(ctx, &obj, &conditions)? {
            return Ok(());
        }
    }
    loop {
        let batch = ctx.api.call("event.from", vec![Json::Array(vec![s(class)]), s(&token), Json::from(30.0)])?;
        token = batch.get("token").and_then(Json::as_str).unwrap_or(&token).to_string();
        for ev in batch.get("events").and_then(Json::as_array).into_iter().flatten() {
            let (Some(r), Some(Json::Object(snapshot))) = (ev.get("ref").and_then(Json::as_str), ev.get("snapshot"))
            else {
                continue;
            };
            // A record in the event is the object's latest: companions are read afresh.
            ctx.res = records::Resolver::default();
            let obj = Obj { class: class.to_string(), r#ref: r.to_string(), record: snapshot.clone() };
            if satisfied(ctx, &obj, &conditions)? {
                return Ok(());
            }
        }
    }
}

fn password_change(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.api.call("session.change_password", vec![s(params.get("old").unwrap_or("")), s(params.req("new")?)])?;
    Ok(())
}

fn role_of(ctx: &mut Ctx, params: &Params) -> Result<String, XeError> {
    match (params.get("role-uuid"), params.get("role-name")) {
        (None, None) => Err(XeError::usage("Required parameter not found", "role-uuid or role-name")),
        (Some(_), Some(_)) => Err(internal("Parameters role-uuid and role-name cannot be used together")),
        (Some(uuid), None) => records::ref_by_uuid(&ctx.api, "role", uuid),
        (None, Some(name)) => {
            let hits = ctx.api.call("role.get_by_name_label", vec![s(name)])?;
            Ok(hits.as_array().and_then(|a| a.first()).and_then(Json::as_str).unwrap_or(records::NULL_REF).to_string())
        }
    }
}

fn role_add(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let role = role_of(ctx, params)?;
    let subject = records::ref_by_uuid(&ctx.api, "subject", params.req("uuid")?)?;
    ctx.api.call("subject.add_to_roles", vec![s(&subject), s(&role)])?;
    Ok(())
}

fn role_remove(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let role = role_of(ctx, params)?;
    let subject = records::ref_by_uuid(&ctx.api, "subject", params.req("uuid")?)?;
    ctx.api.call("subject.remove_from_roles", vec![s(&subject), s(&role)])?;
    Ok(())
}
