//! The control API of the fake's groups: what a test (or the bench) sets
//! up and what fake admins do — groups made without a client (up to the
//! bench's 256 members), changes pushed as `w:gp2` notifications to the
//! members' linked devices, privacy refusals and join requests.

use std::collections::BTreeMap;

use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::Node;

use super::groups::{now, pn, Group, Role};
use super::{phone_entry, FakeWa};

impl FakeWa {
    /// A group the fake holds.
    pub fn group(&self, id: &str) -> Option<Group> {
        self.state().groups.groups.get(id).cloned()
    }

    /// Every `w:g2` IQ the fake got, as `<child tag> <to>`.
    pub fn group_log(&self) -> Vec<String> {
        self.state().groups.log.clone()
    }

    /// `phone`'s privacy refuses being added to groups (403 + an invite code).
    pub fn refuse_group_adds(&self, phone: &str) {
        self.state().groups.private.push(phone.to_string());
    }

    /// A group made by `creator` (superadmin) with `members`, without any
    /// client asking (the bench's big groups; a group someone else made).
    pub fn make_group(&self, creator: &str, subject: &str, members: &[String]) -> String {
        self.make_group_addressed(creator, subject, members, false)
    }

    /// [`FakeWa::make_group`], LID-addressed when `lid` (as WhatsApp's groups are now).
    pub fn make_group_addressed(&self, creator: &str, subject: &str, members: &[String], lid: bool) -> String {
        let mut st = self.state();
        st.groups.next += 1;
        let id = format!("120363{:012}@g.us", st.groups.next);
        let mut m = BTreeMap::new();
        for p in members {
            phone_entry(&mut st, p);
            m.insert(p.clone(), Role::Member);
        }
        phone_entry(&mut st, creator);
        m.insert(creator.to_string(), Role::SuperAdmin);
        let invite = format!("INV{:08}", st.groups.next);
        st.groups.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                subject: subject.into(),
                description: None,
                description_id: None,
                creator: creator.into(),
                creation: now(),
                members: m,
                announce: false,
                locked: false,
                ephemeral: 0,
                approval: false,
                invite,
                requests: Vec::new(),
                lid,
            },
        );
        id
    }

    /// `n` contacts (`prefix` + a counter), each with its Signal identity,
    /// in a new group `admin` made: the bench's big group. Returns the
    /// group id and the contacts.
    pub fn big_group(&self, admin: &str, prefix: &str, n: usize) -> (String, Vec<String>) {
        let contacts: Vec<String> = (0..n).map(|i| format!("{prefix}{i:04}")).collect();
        for c in &contacts {
            self.contact(c);
        }
        let id = self.make_group(admin, "big", &contacts);
        (id, contacts)
    }

    /// The admin `by` adds `phones` to `group`: the registry changes and
    /// every linked device of a member gets the `w:gp2` notification (its
    /// participants with their `lid`).
    pub fn admin_add(&self, by: &str, group: &str, phones: &[String]) -> Result<(), String> {
        self.admin_change(by, group, "add", phones, true)
    }

    /// The admin `by` does `action` (`add`, `remove`, `promote`, `demote`)
    /// to `phones` in `group` and the members' devices are told (before a
    /// removal, so the removed hear of it too); `with_lid`: the notification
    /// names each participant's `lid` beside the phone JID.
    pub fn admin_change(&self, by: &str, group: &str, action: &'static str, phones: &[String], with_lid: bool) -> Result<(), String> {
        let node = {
            let mut st = self.state();
            for p in phones {
                phone_entry(&mut st, p);
            }
            let lids: Vec<String> = phones.iter().map(|p| st.phones.get(p).map(|x| x.lid.clone()).unwrap_or_default()).collect();
            let g = st.groups.groups.get_mut(group).ok_or("no such group")?;
            if action != "remove" {
                for p in phones {
                    g.members.insert(p.clone(), if action == "promote" { Role::Admin } else { Role::Member });
                }
            }
            let people = phones.iter().zip(lids).map(|(p, lid)| {
                let b = NodeBuilder::new("participant").attr("jid", pn(p));
                if with_lid { b.attr("lid", format!("{lid}@lid")).build() } else { b.build() }
            });
            NodeBuilder::new(action).children(people).build()
        };
        self.notify_group(by, group, node)?;
        if action == "remove" {
            if let Some(g) = self.state().groups.groups.get_mut(group) {
                phones.iter().for_each(|p| {
                    g.members.remove(p);
                });
            }
        }
        Ok(())
    }

    /// The admin `by` changes `group`'s subject (a `w:gp2` `<subject>`).
    pub fn admin_subject(&self, by: &str, group: &str, subject: &str) -> Result<(), String> {
        self.state().groups.groups.get_mut(group).ok_or("no such group")?.subject = subject.to_string();
        let action = NodeBuilder::new("subject").attr("subject", subject).attr("s_o", pn(by)).attr("s_t", now().to_string()).build();
        self.notify_group(by, group, action)
    }

    /// Sends `<notification type=w:gp2 from=group participant=by>` with
    /// `action` to every linked device of the group's members.
    pub fn notify_group(&self, by: &str, group: &str, action: Node) -> Result<(), String> {
        let devices: Vec<String> = {
            let mut st = self.state();
            let members: Vec<String> = st.groups.groups.get(group).map(|g| g.members.keys().cloned().collect()).unwrap_or_default();
            st.net.next_id += 1;
            st.linked.values().filter(|l| members.contains(&l.user)).map(|l| l.jid()).collect()
        };
        let id = format!("gp2-{}", self.state().net.next_id);
        let node = NodeBuilder::new("notification")
            .attr("from", group.to_string())
            .attr("type", "w:gp2")
            .attr("id", id)
            .attr("participant", pn(by))
            .attr("t", now().to_string())
            .children([action])
            .build();
        for d in &devices {
            self.send_to_device(d, node.clone())?;
        }
        Ok(())
    }

}

impl FakeWa {
    /// `phone` asks to join `group` (a pending membership request).
    pub fn with_request(&self, group: &str, phone: &str) {
        let mut st = self.state();
        phone_entry(&mut st, phone);
        if let Some(g) = st.groups.groups.get_mut(group) {
            g.requests.push((phone.to_string(), now()));
        }
    }

    /// `group` approves new members (or not).
    pub fn set_approval(&self, group: &str, on: bool) {
        if let Some(g) = self.state().groups.groups.get_mut(group) {
            g.approval = on;
        }
    }
}
