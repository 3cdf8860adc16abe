"""RBAC through the API, as XenCenter's RBAC dialog and Xen Orchestra read it: the static `role`
records (xapi ocaml/xapi/xapi_role.ml, ocaml/idl/ocaml_backend/gen_rbac.ml) and a `subject` for
each local user but root (xapi ocaml/xapi/xapi_subject.ml), whose roles are the user's; a role
change takes effect on the user's next call.
"""
import hashlib
import uuid as uuidlib

import pytest
import XenAPI

from conftest import USER_PASSWORD, root_session


def details(call, *args):
    with pytest.raises(XenAPI.Failure) as e:
        call(*args)
    return e.value.details


def test_roles_are_xapis_static_table(server):
    x = root_session(server, "rbac-objects").xenapi
    roles = x.role.get_all_records()
    names = {r["name_label"]: ref for ref, r in roles.items()}
    for role in ("pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only", "client-cert"):
        assert role in names
    # pool-admin's uuid is fixed; a permission's is the MD5 of its name (gen_rbac.ml hash2uuid).
    assert names["pool-admin"] == "OpaqueRef:0165f154-ba3e-034e-6b27-5d271af109ba"
    start = x.role.get_by_name_label("vm.start")[0]
    assert x.role.get_uuid(start) == str(uuidlib.UUID(bytes=hashlib.md5(b"VM.start").digest()))
    assert x.role.get_subroles(start) == [] and x.role.get_is_internal(start) is True
    assert x.role.get_by_uuid(x.role.get_uuid(start)) == start
    operator = x.role.get_by_name_label("vm-operator")[0]
    perms = set(x.role.get_permissions_name_label(operator))
    assert "vm.start" in perms and "vm.destroy" not in perms
    holders = {x.role.get_name_label(r) for r in x.role.get_by_permission_name_label("vm.start")}
    assert holders == {"pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator"}
    assert set(x.role.get_by_permission(start)) == {names[h] for h in holders}
    assert set(x.role.get_permissions(names["read-only"])) < set(x.role.get_permissions(names["pool-admin"]))
    assert details(x.role.get_record, "OpaqueRef:nope") == ["HANDLE_INVALID", "role", "OpaqueRef:nope"]


def test_local_users_are_subjects_and_role_changes_apply_on_the_next_call(server):
    x = root_session(server, "rbac-objects").xenapi
    subjects = {s["subject_identifier"]: ref for ref, s in x.subject.get_all_records().items()}
    assert set(subjects) >= {"xenledger-user:auditor", "xenledger-user:operator"}
    subject = subjects["xenledger-user:operator"]
    vm_operator = x.role.get_by_name_label("vm-operator")[0]
    assert x.subject.get_roles(subject) == [vm_operator]
    assert "vm.start" in x.subject.get_permissions_name_label(subject)
    s = XenAPI.Session(server.https_url, ignore_ssl=True)
    s.xenapi.login_with_password("operator", USER_PASSWORD, "2.21", "rbac-objects")
    template = s.xenapi.VM.get_by_name_label("Debian Bookworm 12")[0]
    assert details(s.xenapi.VM.clone, template, "by operator")[0] == "RBAC_PERMISSION_DENIED"
    vm_admin = x.role.get_by_name_label("vm-admin")[0]
    x.subject.add_to_roles(subject, vm_admin)
    assert details(x.subject.add_to_roles, subject, vm_admin) == ["ROLE_ALREADY_EXISTS"]
    try:
        vm = s.xenapi.VM.clone(template, "by operator")  # the same session, its next call
        x.VM.destroy(vm)
    finally:
        x.subject.remove_from_roles(subject, vm_admin)
    assert details(x.subject.remove_from_roles, subject, vm_admin) == ["ROLE_NOT_FOUND"]
    assert details(s.xenapi.VM.clone, template, "by operator")[0] == "RBAC_PERMISSION_DENIED"
    assert details(x.subject.create, {"subject_identifier": "xenledger-user:operator", "other_config": {}}) == \
        ["SUBJECT_ALREADY_EXISTS"]
    assert details(x.subject.create, {"subject_identifier": "S-1-5-21-1", "other_config": {}}) == \
        ["SUBJECT_CANNOT_BE_RESOLVED"]
    s.xenapi.session.logout()
