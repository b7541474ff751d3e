//! Publishing and removing modules over the network (what `interstice publish` / `remove`
//! send), and who may: the node's owner, or whoever the Module-authority module lets in.
//! A real node, real UDP, real files.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::network::{NetworkConfig, NetworkStatus};
use interstice::prelude::*;
use interstice::{Modules, StorageConfig, TrustedPeers};
use interstice_net::message::{Message, RemoteError};
use interstice_net::transport::{NodeIdentity, Peer, PeerEndpoint};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Node {
    app: App,
    addr: SocketAddr,
    fingerprint: String,
}

/// A node persisting in `data`, trusting `clients`, with `owner` as its admin and
/// `startup` modules.
fn node(
    data: &std::path::Path,
    clients: &[&NodeIdentity],
    owner: &NodeIdentity,
    startup: &[&str],
) -> Node {
    let identity = Arc::new(NodeIdentity::generate().unwrap());
    let fingerprint = identity.fingerprint();
    let network = NetworkConfig::new("127.0.0.1:0".parse().unwrap(), identity);
    for client in clients {
        network.trusted.trust(client.fingerprint());
    }
    network.admins.trust(owner.fingerprint());
    let mut plugin = IntersticePlugin::default()
        .with_storage(StorageConfig::new(data))
        .with_network(network);
    for module in startup {
        plugin = plugin.with_module_bytes(*module, wasm(module));
    }
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin));
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        app.update();
        if let Some(addr) = app.world().resource::<NetworkStatus>().local_addr {
            break addr;
        }
        assert!(Instant::now() < deadline, "the node never listened");
        std::thread::sleep(Duration::from_millis(2));
    };
    Node {
        app,
        addr,
        fingerprint,
    }
}

/// Runs `client` against the node (as `identity`) while the node runs frames.
fn as_client<T: Send + 'static>(
    node: &mut Node,
    identity: NodeIdentity,
    client: impl FnOnce(Peer) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>
    + Send
    + 'static,
) -> T {
    let (addr, print) = (node.addr, node.fingerprint.clone());
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let trust = TrustedPeers::default();
            trust.trust(print);
            let endpoint =
                PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), &identity, trust).unwrap();
            let peer = endpoint.connect(addr).await.expect("handshake");
            let result = client(peer).await;
            endpoint.close();
            result
        })
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !handle.is_finished() {
        node.app.update();
        assert!(Instant::now() < deadline, "the client did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    handle.join().expect("client thread")
}

fn published(answer: Message) -> Result<String, RemoteError> {
    match answer {
        Message::PublishResult { outcome, .. } => outcome.map(|p| p.module),
        other => panic!("expected PublishResult, got {other:?}"),
    }
}

fn removed(answer: Message) -> Result<(), RemoteError> {
    match answer {
        Message::RemoveResult { outcome, .. } => outcome,
        other => panic!("expected RemoveResult, got {other:?}"),
    }
}

fn copy(identity: &NodeIdentity, dir: &std::path::Path) -> NodeIdentity {
    identity.save(dir).unwrap();
    NodeIdentity::load_or_create(dir).unwrap()
}

/// A stranger's upload of `hello` is refused; the owner's is installed and callable at once.
fn only_the_owner_publishes(
    n: &mut Node,
    keys: &std::path::Path,
    owner: &NodeIdentity,
    stranger: &NodeIdentity,
    hello: &[u8],
) {
    let stranger_copy = copy(stranger, &keys.join("s1"));
    let upload = hello.to_vec();
    let refused = as_client(n, stranger_copy, move |peer| {
        Box::pin(async move { published(peer.upload(1, &upload, false).await.unwrap()) })
    });
    assert!(
        matches!(refused, Err(RemoteError::NotPermitted(_))),
        "{refused:?}"
    );
    let owner_copy = copy(owner, &keys.join("o1"));
    let upload = hello.to_vec();
    let answers = as_client(n, owner_copy, move |peer| {
        Box::pin(async move {
            let installed = published(peer.upload(2, &upload, false).await.unwrap());
            let call = Message::CallReducer {
                request: 1,
                module: "hello".into(),
                reducer: "hello".into(),
                args: {
                    let mut a = Vec::new();
                    interstice_abi::codec::write_str(&mut a, "owner");
                    a
                },
            };
            let called = peer.request(&call).await.unwrap();
            (installed, called)
        })
    });
    assert_eq!(answers.0, Ok("hello".to_string()));
    assert!(
        matches!(
            answers.1,
            Message::CallResult {
                outcome: Ok(()),
                ..
            }
        ),
        "{:?}",
        answers.1
    );
    let count: u64 = query(&mut n.app, "hello", "greeting_count", ()).unwrap();
    assert_eq!(count, 1);
}

/// A stranger's removal of `hello` is refused; the owner's goes through, once.
fn only_the_owner_removes(
    n: &mut Node,
    keys: &std::path::Path,
    owner: &NodeIdentity,
    stranger: &NodeIdentity,
) {
    let stranger_copy = copy(stranger, &keys.join("s2"));
    let refused = as_client(n, stranger_copy, |peer| {
        Box::pin(async move {
            removed(
                peer.request(&Message::Remove {
                    request: 1,
                    module: "hello".into(),
                })
                .await
                .unwrap(),
            )
        })
    });
    assert!(
        matches!(refused, Err(RemoteError::NotPermitted(_))),
        "{refused:?}"
    );
    let owner_copy = copy(owner, &keys.join("o2"));
    let outcome = as_client(n, owner_copy, |peer| {
        Box::pin(async move {
            let first = removed(
                peer.request(&Message::Remove {
                    request: 2,
                    module: "hello".into(),
                })
                .await
                .unwrap(),
            );
            let again = removed(
                peer.request(&Message::Remove {
                    request: 3,
                    module: "hello".into(),
                })
                .await
                .unwrap(),
            );
            (first, again)
        })
    });
    assert_eq!(outcome.0, Ok(()));
    assert!(matches!(outcome.1, Err(RemoteError::NotFound(_))));
    assert!(
        n.app
            .world()
            .resource::<Modules>()
            .schema("hello")
            .is_none()
    );
}

/// On a restarted node `hello` is still gone, and the owner publishing it again gets it empty.
fn removed_stays_removed_and_returns_empty(
    n: &mut Node,
    keys: &std::path::Path,
    owner: &NodeIdentity,
    hello: &[u8],
) {
    assert!(
        n.app
            .world()
            .resource::<Modules>()
            .schema("hello")
            .is_none()
    );
    let owner_copy = copy(owner, &keys.join("o3"));
    let upload = hello.to_vec();
    let again = as_client(n, owner_copy, move |peer| {
        Box::pin(async move { published(peer.upload(3, &upload, false).await.unwrap()) })
    });
    assert_eq!(again, Ok("hello".to_string()));
    let count: u64 = query(&mut n.app, "hello", "greeting_count", ()).unwrap();
    assert_eq!(count, 0);
}

#[test]
fn the_owner_publishes_and_removes_and_both_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let owner = NodeIdentity::generate().unwrap();
    let stranger = NodeIdentity::generate().unwrap();
    let mut n = node(data.path(), &[&owner, &stranger], &owner, &[]);
    let hello = wasm("hello");

    // A stranger may not publish; the owner may, and the module is callable at once.
    only_the_owner_publishes(&mut n, keys.path(), &owner, &stranger, &hello);

    // A restart keeps the published module and its data.
    drop(n);
    let mut n = node(data.path(), &[&owner, &stranger], &owner, &[]);
    let count: u64 = query(&mut n.app, "hello", "greeting_count", ()).unwrap();
    assert_eq!(count, 1, "published modules are installed durably");

    // The stranger may not remove it; the owner may.
    only_the_owner_removes(&mut n, keys.path(), &owner, &stranger);

    // Removed stays removed across a restart, and a module published again under the same
    // name starts empty: the old module's logged changes are never replayed into it.
    drop(n);
    let mut n = node(data.path(), &[&owner], &owner, &[]);
    removed_stays_removed_and_returns_empty(&mut n, keys.path(), &owner, &hello);
    drop(n);
    let mut n = node(data.path(), &[&owner], &owner, &[]);
    let count: u64 = query(&mut n.app, "hello", "greeting_count", ()).unwrap();
    assert_eq!(count, 0, "still empty after another restart");
}

#[test]
fn the_module_authority_decides_for_everyone_else() {
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let owner = NodeIdentity::generate().unwrap();
    let stranger = NodeIdentity::generate().unwrap();
    // `gatekeeper` lets anyone publish and nobody remove.
    let mut n = node(data.path(), &[&stranger], &owner, &["gatekeeper"]);
    let stranger_copy = copy(&stranger, &keys.path().join("s"));
    let upload = wasm("hello");
    let (publish, remove) = as_client(&mut n, stranger_copy, move |peer| {
        Box::pin(async move {
            let publish = published(peer.upload(1, &upload, false).await.unwrap());
            let remove = removed(
                peer.request(&Message::Remove {
                    request: 1,
                    module: "hello".into(),
                })
                .await
                .unwrap(),
            );
            (publish, remove)
        })
    });
    assert_eq!(publish, Ok("hello".to_string()));
    match remove {
        Err(RemoteError::NotPermitted(why)) => assert!(why.contains("gatekeeper"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        n.app
            .world()
            .resource::<Modules>()
            .schema("hello")
            .is_some()
    );
}

#[test]
fn broken_uploads_are_refused_and_nothing_is_installed() {
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let owner = NodeIdentity::generate().unwrap();
    let mut n = node(data.path(), &[&owner], &owner, &[]);
    let owner_copy = copy(&owner, &keys.path().join("o"));
    let outcome = as_client(&mut n, owner_copy, |peer| {
        Box::pin(async move { published(peer.upload(1, b"not wasm at all", false).await.unwrap()) })
    });
    assert!(
        matches!(outcome, Err(RemoteError::Failed(_))),
        "{outcome:?}"
    );
    assert_eq!(n.app.world().resource::<Modules>().schemas().count(), 0);
}

#[test]
fn a_stranger_allowed_to_publish_cannot_replace_what_is_installed() {
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let owner = NodeIdentity::generate().unwrap();
    let stranger = NodeIdentity::generate().unwrap();
    // `gatekeeper` lets anyone publish (new modules), nothing else; the owner installed `hello`.
    let mut n = node(data.path(), &[&stranger], &owner, &["gatekeeper", "hello"]);
    call(&mut n.app, "hello", "hello", ("owner".to_string(),)).unwrap();

    let stranger_copy = copy(&stranger, &keys.path().join("s"));
    let (hello, gatekeeper, bank, filer) = (
        wasm("hello"),
        wasm("gatekeeper"),
        wasm("bank"),
        wasm("filer"),
    );
    let outcomes = as_client(&mut n, stranger_copy, move |peer| {
        Box::pin(async move {
            vec![
                published(peer.upload(1, &hello, false).await.unwrap()),
                published(peer.upload(2, &hello, true).await.unwrap()),
                published(peer.upload(3, &gatekeeper, false).await.unwrap()),
                // A module of a new name, but one that claims the File authority.
                published(peer.upload(5, &filer, false).await.unwrap()),
                published(peer.upload(4, &bank, false).await.unwrap()),
            ]
        })
    });
    let refusals = [
        "upgrade `hello`",
        "upgrade `hello`",
        "upgrade `gatekeeper`",
        "claim:File `filer`",
    ];
    for (outcome, what) in outcomes[..4].iter().zip(refusals) {
        match outcome {
            Err(RemoteError::NotPermitted(why)) => assert!(why.contains(what), "{why}"),
            other => panic!("expected a refusal to {what}, got {other:?}"),
        }
    }
    assert_eq!(
        outcomes[4],
        Ok("bank".to_string()),
        "a new module is a publish"
    );
    let count: u64 = query(&mut n.app, "hello", "greeting_count", ()).unwrap();
    assert_eq!(count, 1, "the installed module kept its data");
}
