//! Every xe command: the ones generated per class from its field table, and the hand-written
//! ones. One row per command; dispatch, `xe help` and the bash completion all read it.

use super::argv::Params;
use super::failure::XeError;
use super::{generic, records, Ctx};

/// Which selector pseudo-parameters a command takes (`<vm-selectors>`: `vm=`, any VM field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selectors {
    None,
    Vm,
    Host,
    Sr,
}

/// A hand-written command's body.
pub type Handler = fn(&mut Ctx, &Params) -> Result<(), XeError>;

pub enum Run {
    Generic { view: records::View, op: generic::Op },
    Hand(Handler),
}

pub struct Command {
    pub name: String,
    pub reqd: Vec<String>,
    pub optn: Vec<String>,
    /// One line, in this project's words.
    pub help: String,
    pub selectors: Selectors,
    /// Listed by `xe help` without `--all`.
    pub standard: bool,
    pub run: Run,
}

/// A hand-written command's row.
pub struct Spec {
    pub name: &'static str,
    pub reqd: &'static [&'static str],
    pub optn: &'static [&'static str],
    pub help: &'static str,
    pub selectors: Selectors,
    pub standard: bool,
    pub run: Handler,
}

/// A hand-written command's row without selectors, listed only by `xe help --all`.
pub const fn hand(
    name: &'static str,
    reqd: &'static [&'static str],
    optn: &'static [&'static str],
    help: &'static str,
    run: Handler,
) -> Spec {
    Spec { name, reqd, optn, help, selectors: Selectors::None, standard: false, run }
}

impl Spec {
    fn command(&self) -> Command {
        Command {
            name: self.name.to_string(),
            reqd: self.reqd.iter().map(|s| s.to_string()).collect(),
            optn: self.optn.iter().map(|s| s.to_string()).collect(),
            help: self.help.to_string(),
            selectors: self.selectors,
            standard: self.standard,
            run: Run::Hand(self.run),
        }
    }
}

/// The whole table, sorted by name.
pub fn table() -> Vec<Command> {
    let mut out: Vec<Command> = Vec::new();
    for spec in super::vm::COMMANDS
        .iter()
        .chain(super::storage::COMMANDS)
        .chain(super::net::COMMANDS)
        .chain(super::tasks::COMMANDS)
    {
        out.push(spec.command());
    }
    for view in records::views() {
        let facts = records::class_facts(view.class).expect("an xe class");
        for (op, reqd, optn) in generic::commands(facts) {
            let suffix = generic::Op::ALL.iter().find(|(o, _)| *o == op).map(|(_, s)| *s).unwrap_or("");
            let name = format!("{}-{suffix}", view.cli);
            // As in xapi's table, a generated command shadows a hand-written one of its name.
            out.retain(|c| c.name != name);
            let standard = op == generic::Op::List && matches!(view.cli, "vm" | "network" | "sr");
            out.push(Command {
                help: generic_help(op, view.cli),
                name,
                reqd,
                optn,
                selectors: Selectors::None,
                standard,
                run: Run::Generic { view, op },
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn generic_help(op: generic::Op, cli: &str) -> String {
    use generic::Op::*;
    match op {
        List => format!("List the {cli} objects; any field=value narrows the list, params= picks the fields."),
        ParamList => format!("Show every field of one {cli}."),
        ParamGet => format!("Show one field of a {cli} (param-key= for one key of a map)."),
        ParamSet => format!("Change fields of a {cli} (map:key=value for one key of a map)."),
        ParamAdd => format!("Add a member to a set field, or key=value pairs to a map field, of a {cli}."),
        ParamRemove => format!("Remove a member from a set field, or a key from a map field, of a {cli}."),
        ParamClear => format!("Empty a field of a {cli}."),
    }
}

pub fn run(command: &Command, ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    match &command.run {
        Run::Generic { view, op } => generic::run(ctx, view, *op, params),
        Run::Hand(f) => f(ctx, params),
    }
}
