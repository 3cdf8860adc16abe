//! The role model: xapi's six user roles, a datamodel fact (ocaml/idl/datamodel_roles.ml) that
//! message and map-key permissions refer to.

/// xapi's roles, most privileged first.
pub const ROLES: [&str; 6] = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"];

pub fn is_role(name: &str) -> bool {
    ROLES.contains(&name)
}

/// `role` and every role above it, highest first (xapi datamodel_roles.ml `roles_gte`); empty
/// for a name that is not a role.
pub fn roles_at_least(role: &str) -> Vec<&'static str> {
    match ROLES.iter().position(|r| *r == role) {
        Some(at) => ROLES[..=at].to_vec(),
        None => Vec::new(),
    }
}
