//! RBAC as a table: for each message, the least of xapi's six roles that may call it, checked for
//! every role against the pure check the node runs on every call (`node::check_rbac`;
//! docs/xenapi-semantics.md §c.4). The least roles are xapi's `~allowed_roles` in the IDL
//! (`ocaml/idl/datamodel_vm.ml`, `datamodel_host.ml`, `datamodel_pool.ml`, `datamodel.ml`:
//! `_R_POOL_ADMIN`, `_R_POOL_OP`, `_R_VM_POWER_ADMIN`, `_R_VM_ADMIN`, `_R_VM_OP`, `_R_READ_ONLY`),
//! written here by hand so that a wrong datamodel or a wrong check shows up as a wrong row.

use xenledger::node::{check_rbac, Caller};
use xenledger::schema::{roles::ROLES, schema};
use xenledger::value::Value;

/// `(method, least role)`; a role may call the method iff it is at or above the least one.
const TABLE: &[(&str, &str)] = &[
    // The VM's power operations: vm-operator and above.
    ("VM.start", "vm-operator"),
    ("VM.clean_shutdown", "vm-operator"),
    ("VM.hard_shutdown", "vm-operator"),
    ("VM.suspend", "vm-operator"),
    ("VM.resume", "vm-operator"),
    ("VM.pause", "vm-operator"),
    // Making and removing VMs and changing their configuration: vm-admin.
    ("VM.clone", "vm-admin"),
    ("VM.copy", "vm-admin"),
    ("VM.provision", "vm-admin"),
    ("VM.destroy", "vm-admin"),
    ("VM.set_VCPUs_max", "vm-admin"),
    ("VM.set_name_label", "vm-admin"),
    ("VM.add_to_other_config", "vm-admin"),
    ("VM.set_bios_strings", "vm-admin"),
    ("network.create", "vm-admin"),
    // Snapshots, migration, memory limits: vm-power-admin.
    ("VM.snapshot", "vm-power-admin"),
    ("VM.checkpoint", "vm-power-admin"),
    ("VM.revert", "vm-power-admin"),
    ("VM.pool_migrate", "vm-power-admin"),
    ("VM.set_memory_limits", "vm-power-admin"),
    // The pool and hosts: pool-operator.
    ("VM.power_state_reset", "pool-operator"),
    ("VM.set_ha_restart_priority", "pool-operator"),
    ("host.reboot", "pool-operator"),
    ("host.shutdown", "pool-operator"),
    ("host.disable", "pool-operator"),
    ("host.enable", "pool-operator"),
    ("host.evacuate", "pool-operator"),
    ("pool.set_name_label", "pool-operator"),
    ("message.create", "pool-operator"),
    ("blob.create", "pool-operator"),
    ("secret.create", "pool-operator"),
    ("secret.get_value", "pool-operator"),
    // pool-admin alone.
    ("host.call_plugin", "pool-admin"),
    ("VM.send_sysrq", "pool-admin"),
    // Reads and the session's own business: everyone.
    ("VM.get_record", "read-only"),
    ("VM.get_all_records", "read-only"),
    ("VM.assert_can_boot_here", "read-only"),
    ("host.get_servertime", "read-only"),
    ("pool.get_all", "read-only"),
    ("SR.get_all_records", "read-only"),
    ("VDI.get_record", "read-only"),
    ("session.logout", "read-only"),
    ("event.from", "read-only"),
    ("task.cancel", "read-only"),
    ("task.get_record", "read-only"),
    ("message.get_all_records", "read-only"),
];

fn caller(role: &str, superuser: bool) -> Caller {
    Caller {
        session: "key".into(),
        presented: "OpaqueRef:s".into(),
        user: role.into(),
        originator: "rbac-table".into(),
        superuser,
        role: role.into(),
    }
}

#[test]
fn every_role_against_every_row() {
    for (method, least) in TABLE {
        let (_, msg) = schema().lookup(method).unwrap_or_else(|| panic!("no message {method}"));
        let at = ROLES.iter().position(|r| r == least).expect("a role");
        for (i, role) in ROLES.iter().enumerate() {
            let args = vec![Value::Null; msg.args().len()];
            let got = check_rbac(&caller(role, false), msg, &args);
            if i <= at {
                assert!(got.is_ok(), "{method} as {role}: {got:?}");
            } else {
                // xapi rbac.ml: the permission, lower-cased, and the roles that hold it.
                let e = got.expect_err(&format!("{method} as {role}"));
                assert_eq!(e.code, "RBAC_PERMISSION_DENIED", "{method} as {role}");
                assert_eq!(e.params[0], method.to_ascii_lowercase(), "{method}");
                let holders = ROLES[..=at].join(", ");
                assert_eq!(
                    e.params[1],
                    format!("No permission in user session. (Roles with this permission: {holders})")
                );
            }
        }
        // A superuser (root, or the local socket) passes everything.
        let args = vec![Value::Null; msg.args().len()];
        assert!(check_rbac(&caller("read-only", true), msg, &args).is_ok(), "{method}");
    }
}

/// Protected map keys (xapi `~map_keys_roles`): the key's own least role replaces the message's.
#[test]
fn protected_keys_have_rows_of_their_own() {
    let keyed: &[(&str, &str, &str, &str)] = &[
        ("VM.add_to_other_config", "folder", "vm-operator", "vm.add_to_other_config/key:folder"),
        ("VM.add_to_other_config", "pci", "pool-admin", "vm.add_to_other_config/key:pci"),
        ("VM.remove_from_other_config", "folder", "vm-operator", "vm.remove_from_other_config/key:folder"),
    ];
    for (method, key, least, permission) in keyed {
        let (_, msg) = schema().lookup(method).unwrap();
        let at = ROLES.iter().position(|r| r == least).unwrap();
        let mut args = vec![Value::Null; msg.args().len()];
        let key_at = msg.args().iter().position(|p| p.name == "key").unwrap();
        args[key_at] = Value::str(*key);
        for (i, role) in ROLES.iter().enumerate() {
            let got = check_rbac(&caller(role, false), msg, &args);
            match got {
                Ok(()) => assert!(i <= at, "{method} {key} as {role} should be denied"),
                Err(e) => {
                    assert!(i > at, "{method} {key} as {role}: {e}");
                    assert_eq!(e.params[0], *permission);
                }
            }
        }
    }
}
