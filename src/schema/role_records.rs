//! The `role` objects, as xapi serves them (ocaml/xapi/xapi_role.ml, ocaml/idl/ocaml_backend/
//! gen_rbac.ml): not database rows but a static table made from the datamodel. Every permission
//! is a role without subroles (`is_internal`, named by its lower-cased permission: a message's
//! wire name, `<message>/key:<key>` for a protected map key, `http/<action>` for an HTTP handler,
//! `task.destroy/any`); each of xapi's seven roles has as subroles the permissions it holds. A
//! role's uuid is the MD5 of its name as 16 bytes (pool-admin's is fixed), and its ref is
//! `OpaqueRef:<uuid>`.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::schema;
use crate::value::{format_uuid, md5};

const HTTP_PERMISSIONS_JSON: &str = include_str!("../../schema/facts/http_permissions.json");

/// xapi's fixed uuid of pool-admin (ocaml/xapi-consts/constants.ml `rbac_pool_admin_uuid`).
const POOL_ADMIN_UUID: &str = "0165f154-ba3e-034e-6b27-5d271af109ba";

/// xapi's roles in its order, with descriptions and whether each is internal
/// (ocaml/idl/datamodel_roles.ml `ordered`).
const ROLES: [(&str, &str, bool); 7] = [
    ("pool-admin", "The Pool Administrator role has full access to all features and settings, including accessing Dom0 and managing subjects, roles and external authentication", false),
    ("pool-operator", "The Pool Operator role manages host- and pool-wide resources, including setting up storage, creating resource pools and managing patches, high availability (HA) and workload balancing (WLB)", false),
    ("vm-power-admin", "The VM Power Administrator role has full access to VM and template management and can choose where to start VMs and use the dynamic memory control and VM snapshot features", false),
    ("vm-admin", "The VM Administrator role can manage VMs and templates", false),
    ("vm-operator", "The VM Operator role can use VMs and interact with VM consoles", false),
    ("client-cert", "The Client Certificate role has access to functionality granted to those who authenticate using a client certificate", true),
    ("read-only", "The Read-Only role can log in with basic read-only access", false),
];

/// One `role` object.
#[derive(Debug)]
pub struct RoleRecord {
    pub reference: String,
    pub uuid: String,
    pub name_label: String,
    pub name_description: String,
    /// Refs of the permissions a role holds; empty for a permission.
    pub subroles: Vec<String>,
    pub is_internal: bool,
}

/// Every role and permission, and look-ups.
pub struct RoleTable {
    /// The permissions first, then the seven roles (xapi's `get_all` order).
    pub all: Vec<RoleRecord>,
    by_ref: HashMap<String, usize>,
    by_uuid: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

impl RoleTable {
    pub fn by_ref(&self, reference: &str) -> Option<&RoleRecord> {
        self.by_ref.get(reference).map(|i| &self.all[*i])
    }

    pub fn by_uuid(&self, uuid: &str) -> Option<&RoleRecord> {
        self.by_uuid.get(uuid).map(|i| &self.all[*i])
    }

    pub fn by_name_label(&self, name: &str) -> Option<&RoleRecord> {
        self.by_name.get(name).map(|i| &self.all[*i])
    }

    /// The permissions a role holds (itself, for a permission), as xapi's `get_permissions`.
    pub fn permissions_of<'a>(&'a self, role: &'a RoleRecord) -> Vec<&'a RoleRecord> {
        if role.subroles.is_empty() {
            vec![role]
        } else {
            role.subroles.iter().filter_map(|r| self.by_ref(r)).collect()
        }
    }
}

/// MD5 of the name as the uuid's 16 bytes (gen_rbac.ml `hash2uuid`: `Uuidm.of_binary_string`,
/// no version bits set).
fn uuid_of(name: &str) -> String {
    format_uuid(&md5(name.as_bytes()))
}

/// Each permission with the roles that hold it, in the datamodel's order, without duplicates.
fn permissions() -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut add = |name: String, roles: Vec<String>| match seen.get(&name) {
        Some(at) => {
            for r in roles {
                if !out[*at].1.contains(&r) {
                    out[*at].1.push(r);
                }
            }
        }
        None => {
            seen.insert(name.clone(), out.len());
            out.push((name, roles));
        }
    };
    for class in &schema().classes {
        for msg in &class.messages {
            if msg.roles.is_empty() {
                continue; // local root only: no role holds it
            }
            add(msg.wire_name.clone(), msg.roles.clone());
            for (key, least) in &msg.map_keys {
                let roles = super::roles::roles_at_least(least).into_iter().map(String::from).collect();
                add(format!("{}/key:{key}", msg.wire_name), roles);
            }
        }
    }
    let facts: serde_json::Value = serde_json::from_str(HTTP_PERMISSIONS_JSON).expect("http_permissions.json");
    for p in facts["permissions"].as_array().expect("a permission list") {
        let roles: Vec<String> =
            p["roles"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(String::from)).collect();
        if !roles.is_empty() {
            add(p["permission"].as_str().unwrap_or("").to_string(), roles);
        }
    }
    out
}

fn build() -> RoleTable {
    let permissions = permissions();
    let mut all = Vec::with_capacity(permissions.len() + ROLES.len());
    for (name, _) in &permissions {
        let uuid = uuid_of(name);
        all.push(RoleRecord {
            reference: format!("OpaqueRef:{uuid}"),
            uuid,
            name_label: name.to_ascii_lowercase(),
            name_description: "A basic permission".into(),
            subroles: Vec::new(),
            is_internal: true,
        });
    }
    for (role, description, is_internal) in ROLES {
        let uuid = if role == "pool-admin" { POOL_ADMIN_UUID.to_string() } else { uuid_of(role) };
        let subroles = permissions
            .iter()
            .zip(&all)
            .filter(|((_, roles), _)| roles.iter().any(|r| r == role))
            .map(|(_, record)| record.reference.clone())
            .collect();
        all.push(RoleRecord {
            reference: format!("OpaqueRef:{uuid}"),
            uuid,
            name_label: role.to_string(),
            name_description: description.to_string(),
            subroles,
            is_internal,
        });
    }
    let index = |key: fn(&RoleRecord) -> &str| all.iter().enumerate().map(|(i, r)| (key(r).to_string(), i)).collect();
    RoleTable { by_ref: index(|r| &r.reference), by_uuid: index(|r| &r.uuid), by_name: index(|r| &r.name_label), all }
}

/// The table, built once.
pub fn role_table() -> &'static RoleTable {
    static TABLE: OnceLock<RoleTable> = OnceLock::new();
    TABLE.get_or_init(build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_permissions_are_xapis() {
        let t = role_table();
        let admin = t.by_name_label("pool-admin").unwrap();
        assert_eq!(admin.reference, "OpaqueRef:0165f154-ba3e-034e-6b27-5d271af109ba");
        let read_only = t.by_name_label("read-only").unwrap();
        assert!(!read_only.is_internal && t.by_name_label("client-cert").unwrap().is_internal);
        // Every permission is pool-admin's; read-only's are a strict subset.
        assert_eq!(admin.subroles.len(), t.all.len() - 7);
        assert!(read_only.subroles.len() < admin.subroles.len());
        let start = t.by_name_label("vm.start").unwrap();
        assert!(start.subroles.is_empty() && start.is_internal);
        assert_eq!(start.uuid, format_uuid(&md5(b"VM.start")));
        assert!(!read_only.subroles.contains(&start.reference));
        assert!(t.by_name_label("http/put_import_raw_vdi").is_some());
        assert!(t.by_name_label("vm.add_to_other_config/key:folder").is_some());
        assert_eq!(t.permissions_of(start).len(), 1);
    }
}
