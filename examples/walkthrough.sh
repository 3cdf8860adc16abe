#!/usr/bin/env bash
# The XenAPI getting-started walkthrough with xe only: find a template, install a VM from it (its
# disks provisioned in the default SR), give it a network, start, suspend and resume it, snapshot
# and revert it, shut it down and uninstall it.
#
#   XE_EXTRA_ARGS="port=8443,password=<root's password>" examples/walkthrough.sh
#
# `xe` is the binary `cargo build` makes (target/debug/xe) or `cargo install --path .` installs.
set -euo pipefail

xe template-list name-label="Debian Bookworm 12"

vm=$(xe vm-install template="Debian Bookworm 12" new-name-label="my first VM")
echo "installed $vm"
xe vm-disk-list uuid="$vm" vdi-params=name-label,virtual-size,sr-name-label

network=$(xe network-list bridge=xenbr0 --minimal)
xe vif-create vm-uuid="$vm" network-uuid="$network" device=0 >/dev/null
xe vm-vif-list uuid="$vm" params=device,network-name-label

for step in start suspend resume; do
    xe vm-$step uuid="$vm"
    echo "$step: $(xe vm-param-get uuid="$vm" param-name=power-state)"
done

xe vm-param-set uuid="$vm" name-description=before
snapshot=$(xe vm-snapshot uuid="$vm" new-name-label="before the change")
xe vm-param-set uuid="$vm" name-description=changed
xe snapshot-revert snapshot-uuid="$snapshot"
echo "reverted: $(xe vm-param-get uuid="$vm" param-name=name-description)," \
    "$(xe vm-param-get uuid="$vm" param-name=power-state)"

xe vm-start uuid="$vm"
xe vm-shutdown uuid="$vm"
xe vm-list uuid="$vm"
xe vm-uninstall uuid="$vm" --force
