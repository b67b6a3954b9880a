//! A private Kubernetes control plane for tests: `scripts/kube-control-plane.sh` (etcd and the
//! real kube-apiserver v1.36.2 vendored in third_party/kubernetes, on free loopback ports), the
//! one way every Rust test gets an API server.
//!
//! Without the binaries (`scripts/install-kube-tools.sh` unpacks them into `.tools/kube`) or
//! kubectl (`scripts/install-deploy-tools.sh`), [`ControlPlane::start_or_skip`] and
//! [`ControlPlane::shared_or_skip`] skip loudly, and fail when `LIVEFARM_REQUIRE_KUBE=1`
//! (scripts/test.sh sets it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The repository root (this crate lives in crates/testkit).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A running control plane: etcd and kube-apiserver (and, when started with
/// `scheduling`, kube-controller-manager and kube-scheduler). No kubelet runs: Pods are
/// created and bound, never started.
#[derive(Debug)]
pub struct ControlPlane {
    run_dir: PathBuf,
    url: String,
    kubectl: PathBuf,
    /// A shared control plane is never dropped; its watchdog stops it when the test process
    /// exits.
    owned: bool,
}

/// Where the tools are, or why they are not there.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let root = repo_root();
    let kube_tools = std::env::var_os("KUBE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".tools/kube"));
    let deploy_tools = std::env::var_os("TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".tools/deploy"));
    let kubectl = deploy_tools.join("bin/kubectl");
    for (path, install) in [
        (
            kube_tools.join("bin/kube-apiserver"),
            "install-kube-tools.sh",
        ),
        (kube_tools.join("bin/etcd"), "install-kube-tools.sh"),
        (kubectl.clone(), "install-deploy-tools.sh"),
    ] {
        if !path.exists() {
            return Err(format!(
                "{} is missing (run scripts/{install})",
                path.display()
            ));
        }
    }
    Ok((root.join("scripts/kube-control-plane.sh"), kubectl))
}

fn skip_or_panic(why: &str) {
    if std::env::var("LIVEFARM_REQUIRE_KUBE").is_ok_and(|v| v == "1") {
        panic!("LIVEFARM_REQUIRE_KUBE=1 but no Kubernetes control plane can start: {why}");
    }
    eprintln!("!!! SKIPPED: no Kubernetes control plane: {why}");
}

impl ControlPlane {
    /// Starts a control plane of its own (the API server only, unless `scheduling`: then the
    /// controller-manager and scheduler too), stopped when dropped; `None` (after saying so)
    /// when the binaries are missing and `LIVEFARM_REQUIRE_KUBE` is not 1.
    pub fn start_or_skip(scheduling: bool) -> Option<ControlPlane> {
        match tools() {
            Ok((script, kubectl)) => Some(Self::start(&script, kubectl, scheduling, true)),
            Err(why) => {
                skip_or_panic(&why);
                None
            }
        }
    }

    /// One API server for every test of this test binary (each should work in a namespace of
    /// its own, [`ControlPlane::namespace`]); started by the first caller, stopped by a
    /// watchdog when the process exits. `None` as in [`ControlPlane::start_or_skip`].
    pub fn shared_or_skip() -> Option<&'static ControlPlane> {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| {
            tools().map(|(script, kubectl)| Self::start(&script, kubectl, false, false))
        });
        match shared {
            Ok(plane) => Some(plane),
            Err(why) => {
                skip_or_panic(why);
                None
            }
        }
    }

    fn start(script: &Path, kubectl: PathBuf, scheduling: bool, owned: bool) -> ControlPlane {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let run_dir = std::env::temp_dir().join(format!(
            "livefarm-kube-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir).expect("control plane run dir");
        let mut cmd = Command::new(script);
        cmd.arg("start").arg(&run_dir);
        if !scheduling {
            cmd.arg("--apiserver-only");
        }
        // The watchdog stops it if this process dies before dropping it (or never drops it).
        cmd.arg("--owner-pid").arg(std::process::id().to_string());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} start failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(run_dir.join("env")).expect("control plane env file");
        let url = env
            .lines()
            .find_map(|l| l.strip_prefix("KUBE_API_URL="))
            .expect("KUBE_API_URL in the env file")
            .to_owned();
        ControlPlane {
            run_dir,
            url,
            kubectl,
            owned,
        }
    }

    /// `https://127.0.0.1:<port>` (a self-signed certificate).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A cluster-admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.run_dir.join("kubeconfig")
    }

    /// The API server's certificate (PEM), for clients that verify it.
    pub fn ca_cert(&self) -> PathBuf {
        self.run_dir.join("certs/apiserver.crt")
    }

    /// Runs kubectl as cluster-admin, `stdin` piped in; its output whatever the exit status.
    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.kubectl)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
        let mut pipe = child.stdin.take().expect("kubectl stdin");
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes())
                .expect("write kubectl stdin");
        }
        drop(pipe);
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl as cluster-admin; its stdout. Panics (with stderr) when it fails.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_output(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("kubectl output is UTF-8")
    }

    /// Creates a namespace named `<prefix>-<n>`, unique on this control plane; its name.
    pub fn namespace(&self, prefix: &str) -> String {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!("{prefix}-{}", SEQ.fetch_add(1, Ordering::SeqCst));
        self.kubectl(&["create", "namespace", &name], None);
        name
    }

    /// Applies the objects of the Helm chart (helm/livefarm, release `livefarm`) rendered with
    /// `values` (relative to the repository root) whose labels match `selector`, into
    /// `namespace`: e.g. the redeemer's ServiceAccount, Role, RoleBinding and Lease.
    pub fn apply_chart(&self, namespace: &str, values: &str, selector: &str) -> String {
        let root = repo_root();
        let helm = self.kubectl.with_file_name("helm");
        let out = Command::new(&helm)
            .args(["template", "livefarm"])
            .arg(root.join("helm/livefarm"))
            .arg("-f")
            .arg(root.join(values))
            .args(["--namespace", namespace])
            // the monitoring objects' kinds need CRDs this control plane may not have, and
            // kubectl maps every kind in the stream before the selector filters
            .args(["--set", "monitoring.enabled=false"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", helm.display()));
        assert!(
            out.status.success(),
            "helm template failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest = String::from_utf8(out.stdout).expect("helm output is UTF-8");
        self.kubectl(
            &["apply", "-n", namespace, "-l", selector, "-f", "-"],
            Some(&manifest),
        )
    }

    /// A kubeconfig (YAML text) that authenticates as the ServiceAccount `account` of
    /// `namespace`, with a token from the TokenRequest API (`kubectl create token`), as a pod
    /// running under that account would.
    pub fn service_account_kubeconfig(&self, namespace: &str, account: &str) -> String {
        let token = self.kubectl(
            &["create", "token", account, "-n", namespace, "--duration=1h"],
            None,
        );
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: {account}\n  user:\n    token: {token}\n\
             contexts:\n- name: test\n  context: {{cluster: test, user: {account}, namespace: {namespace}}}\n\
             current-context: test\n",
            url = self.url,
            token = token.trim(),
        )
    }

    /// The cluster-admin kubeconfig as YAML text.
    pub fn admin_kubeconfig(&self) -> String {
        std::fs::read_to_string(self.kubeconfig()).expect("admin kubeconfig")
    }

    fn stop(&self) {
        if let Ok((script, _)) = tools() {
            let _ = Command::new(script).arg("stop").arg(&self.run_dir).output();
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
        }
    }
}
