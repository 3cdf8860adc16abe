//! The default templates' data file (`schema/facts/templates.json`, docs/templates.md) is pinned:
//! a change to it must be a regeneration by `schema/gen/templates.py`, reviewed, and this test's
//! digest updated with it. The spot checks are facts of the guest-templates data
//! (docs/xenapi-semantics.md §i: 49 templates at the studied commit).

use xenledger::engine::internal::templates;

/// blake3 of schema/facts/templates.json as generated from guest-templates-json commit 5ee6322d.
const PINNED: &str = "fef72097ef1e30b3ec70813614c01a281859844e7bba32e08361ba1ba2a4ae05";

#[test]
fn the_templates_file_is_the_generated_one() {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/facts/templates.json")).unwrap();
    assert_eq!(blake3::hash(&text).to_hex().as_str(), PINNED, "regenerate with schema/gen/templates.py and review");
}

#[test]
fn forty_nine_templates_with_what_a_vm_needs() {
    let all = templates();
    assert_eq!(all.len(), 49);
    let mut names: Vec<&str> = all.iter().map(|t| t["name_label"].as_str().unwrap()).collect();
    names.dedup();
    assert_eq!(names.len(), 49, "names are unique");
    let debian = all.iter().find(|t| t["name_label"] == "Debian Bookworm 12").expect("Debian Bookworm 12");
    assert_eq!(debian["reference_label"], "debian-12");
    assert_eq!(debian["memory_static_min"], 1i64 << 30);
    assert_eq!(debian["memory_static_max"], 2i64 << 30);
    let disks = debian["other_config"]["disks"].as_str().unwrap();
    assert!(disks.starts_with("<provision><disk ") && disks.contains(r#"size="10737418240""#), "{disks}");
    for t in all {
        let smin = t["memory_static_min"].as_i64().unwrap();
        let dmin = t["memory_dynamic_min"].as_i64().unwrap();
        let dmax = t["memory_dynamic_max"].as_i64().unwrap();
        let smax = t["memory_static_max"].as_i64().unwrap();
        assert!(0 < smin && smin <= dmin && dmin <= dmax && dmax <= smax, "{}", t["name_label"]);
        assert!(t["recommendations"].as_str().unwrap().starts_with("<restrictions>"), "{}", t["name_label"]);
        assert!(t["VCPUs_at_startup"].as_i64().unwrap() >= 1);
    }
}
