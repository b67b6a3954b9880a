//! Hardware selection: which GPU (if any) each stage of a session runs on, per-GPU session limits,
//! and per-stage fallback to the CPU.
//!
//! The policy is pure logic over a [`GpuInventory`], so it is unit-tested without a GPU; the
//! FFmpeg side (NVDEC, NVENC) lives in the session and reports failures back through
//! [`StagePlan::fall_back`].

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// What the operator asked for (`--accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// Use NVIDIA GPUs when present, the CPU otherwise.
    #[default]
    Auto,
    /// Never touch a GPU.
    Cpu,
    /// Require an NVIDIA GPU; refuse to start without one.
    Nvidia,
}

impl FromStr for AccelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" | "none" => Ok(Self::Cpu),
            "nvidia" | "cuda" | "gpu" => Ok(Self::Nvidia),
            other => Err(format!(
                "unknown accelerator {other:?} (expected auto, cpu or nvidia)"
            )),
        }
    }
}

impl fmt::Display for AccelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Nvidia => "nvidia",
        })
    }
}

/// Parses `--gpus 0,1`.
pub fn parse_gpu_list(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<u32>()
                .map_err(|_| format!("invalid gpu index {part:?}"))
        })
        .collect()
}

/// One NVIDIA GPU as seen at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    pub index: u32,
    pub model: String,
    pub has_nvdec: bool,
    pub has_nvenc: bool,
    /// Concurrent encode sessions the driver allows (None = unlimited).
    pub nvenc_session_limit: Option<u32>,
}

impl GpuInfo {
    /// Builds the entry from a model name, using what is known of NVIDIA's product lines:
    /// compute parts (A100, H100, H200, B200...) have NVDEC but no NVENC; GeForce cards cap NVENC
    /// sessions (8 since the 2024 drivers); other workstation/datacenter cards are unlimited.
    pub fn from_model(index: u32, model: &str) -> Self {
        let upper = model.to_ascii_uppercase();
        let compute_only = [
            "A100", "H100", "H200", "H800", "A800", "B100", "B200", "GB200",
        ]
        .iter()
        .any(|part| upper.contains(part));
        let geforce =
            upper.contains("GEFORCE") || upper.contains("RTX 40") || upper.contains("GTX");
        GpuInfo {
            index,
            model: model.trim().to_string(),
            has_nvdec: true,
            has_nvenc: !compute_only,
            nvenc_session_limit: if geforce { Some(8) } else { None },
        }
    }
}

/// The GPUs of this machine that Livefarm may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuInventory {
    pub gpus: Vec<GpuInfo>,
}

impl GpuInventory {
    /// Reads the NVIDIA driver's procfs (`/proc/driver/nvidia/gpus/*/information`); an empty
    /// inventory when no driver is loaded.
    pub fn detect() -> Self {
        let mut gpus = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") else {
            return GpuInventory::default();
        };
        let mut dirs: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        dirs.sort();
        for (index, dir) in dirs.iter().enumerate() {
            let Ok(text) = std::fs::read_to_string(dir.join("information")) else {
                continue;
            };
            let model = parse_procfs_model(&text).unwrap_or("NVIDIA GPU");
            gpus.push(GpuInfo::from_model(index as u32, model));
        }
        GpuInventory { gpus }
    }

    /// Keeps only the GPUs named by `--gpus` (all when `only` is empty).
    pub fn restrict(mut self, only: &[u32]) -> Self {
        if !only.is_empty() {
            self.gpus.retain(|gpu| only.contains(&gpu.index));
        }
        self
    }
}

fn parse_procfs_model(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|line| line.strip_prefix("Model:"))
        .map(str::trim)
}

/// Where one stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Gpu(u32),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Gpu(index) => write!(f, "gpu{index}"),
        }
    }
}

/// A pipeline stage that can run on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Decode,
    Scale,
    Encode,
}

/// Where each stage of one session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagePlan {
    pub decode: Device,
    pub scale: Device,
    pub encode: Device,
}

impl StagePlan {
    pub const CPU: StagePlan = StagePlan {
        decode: Device::Cpu,
        scale: Device::Cpu,
        encode: Device::Cpu,
    };

    /// Moves one stage to the CPU after it failed on the GPU. Scaling on the GPU only pays when
    /// the frames are already there, so a decode fallback takes scaling with it.
    pub fn fall_back(&mut self, stage: Stage) {
        match stage {
            Stage::Decode => {
                self.decode = Device::Cpu;
                self.scale = Device::Cpu;
            }
            Stage::Scale => self.scale = Device::Cpu,
            Stage::Encode => self.encode = Device::Cpu,
        }
    }

    pub fn uses_gpu(&self) -> bool {
        [self.decode, self.scale, self.encode]
            .iter()
            .any(|d| matches!(d, Device::Gpu(_)))
    }

    pub fn gpu(&self) -> Option<u32> {
        [self.decode, self.scale, self.encode]
            .iter()
            .find_map(|d| match d {
                Device::Gpu(index) => Some(*index),
                Device::Cpu => None,
            })
    }
}

impl fmt::Display for StagePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "decode={} scale={} encode={}",
            self.decode, self.scale, self.encode
        )
    }
}

/// Why a plan could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccelError {
    #[error("--accel nvidia was requested but no NVIDIA GPU was found")]
    NoGpu,
    #[error("every GPU is at its session limit")]
    GpusFull,
}

#[derive(Debug)]
struct Slot {
    info: GpuInfo,
    sessions: u32,
    max_sessions: u32,
}

/// Hands out GPUs to sessions, least loaded first, honouring per-GPU session limits.
#[derive(Debug, Clone)]
pub struct GpuPool {
    choice: AccelChoice,
    slots: Arc<Mutex<Vec<Slot>>>,
}

/// A session's hold on a GPU; released on drop.
#[derive(Debug)]
pub struct GpuLease {
    pool: Option<GpuPool>,
    pub plan: StagePlan,
}

impl Drop for GpuLease {
    fn drop(&mut self) {
        if let (Some(pool), Some(index)) = (self.pool.take(), self.plan.gpu()) {
            let mut slots = pool.lock_slots();
            if let Some(slot) = slots.iter_mut().find(|s| s.info.index == index) {
                slot.sessions = slot.sessions.saturating_sub(1);
            }
        }
    }
}

impl GpuPool {
    /// `max_sessions_per_gpu` caps transcode sessions per GPU (the NVENC limit of a GeForce card
    /// lowers it further: each session holds one NVENC session per rendition).
    pub fn new(
        choice: AccelChoice,
        inventory: GpuInventory,
        max_sessions_per_gpu: u32,
        renditions_per_session: u32,
    ) -> Result<Self, AccelError> {
        if choice == AccelChoice::Nvidia && inventory.gpus.is_empty() {
            return Err(AccelError::NoGpu);
        }
        let slots = if choice == AccelChoice::Cpu {
            Vec::new()
        } else {
            inventory
                .gpus
                .into_iter()
                .map(|info| {
                    let nvenc_cap = match (info.has_nvenc, info.nvenc_session_limit) {
                        (true, Some(limit)) => limit / renditions_per_session.max(1),
                        _ => u32::MAX,
                    };
                    Slot {
                        max_sessions: max_sessions_per_gpu.min(nvenc_cap.max(1)),
                        sessions: 0,
                        info,
                    }
                })
                .collect()
        };
        Ok(GpuPool {
            choice,
            slots: Arc::new(Mutex::new(slots)),
        })
    }

    /// A pool that never hands out a GPU.
    pub fn cpu_only() -> Self {
        GpuPool {
            choice: AccelChoice::Cpu,
            slots: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn choice(&self) -> AccelChoice {
        self.choice
    }

    /// Places a new session. With `auto`, a full pool places the session on the CPU; with
    /// `nvidia`, it is refused so the caller can report the farm as busy.
    pub fn acquire(&self) -> Result<GpuLease, AccelError> {
        let mut slots = self.lock_slots();
        let best = slots
            .iter_mut()
            .filter(|slot| slot.sessions < slot.max_sessions)
            .min_by_key(|slot| (slot.sessions, slot.info.index));
        match best {
            Some(slot) => {
                slot.sessions += 1;
                let gpu = Device::Gpu(slot.info.index);
                let plan = StagePlan {
                    decode: if slot.info.has_nvdec {
                        gpu
                    } else {
                        Device::Cpu
                    },
                    scale: if slot.info.has_nvdec {
                        gpu
                    } else {
                        Device::Cpu
                    },
                    encode: if slot.info.has_nvenc {
                        gpu
                    } else {
                        Device::Cpu
                    },
                };
                drop(slots);
                Ok(GpuLease {
                    pool: Some(self.clone()),
                    plan,
                })
            }
            None if self.choice == AccelChoice::Nvidia => Err(AccelError::GpusFull),
            None => Ok(GpuLease {
                pool: None,
                plan: StagePlan::CPU,
            }),
        }
    }

    /// Sessions running per GPU index, for metrics and worker heartbeats.
    pub fn load(&self) -> Vec<(u32, u32, u32)> {
        self.lock_slots()
            .iter()
            .map(|slot| (slot.info.index, slot.sessions, slot.max_sessions))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(models: &[&str]) -> GpuInventory {
        GpuInventory {
            gpus: models
                .iter()
                .enumerate()
                .map(|(i, m)| GpuInfo::from_model(i as u32, m))
                .collect(),
        }
    }

    #[test]
    fn parses_choices_and_gpu_lists() {
        assert_eq!("AUTO".parse::<AccelChoice>(), Ok(AccelChoice::Auto));
        assert_eq!("cpu".parse::<AccelChoice>(), Ok(AccelChoice::Cpu));
        assert_eq!("nvidia".parse::<AccelChoice>(), Ok(AccelChoice::Nvidia));
        assert!("amd".parse::<AccelChoice>().is_err());
        assert_eq!(parse_gpu_list("0, 1,3"), Ok(vec![0, 1, 3]));
        assert!(parse_gpu_list("0,x").is_err());
    }

    #[test]
    fn knows_which_cards_lack_nvenc() {
        let h100 = GpuInfo::from_model(0, "NVIDIA H100 80GB HBM3");
        assert!(h100.has_nvdec && !h100.has_nvenc);
        let l4 = GpuInfo::from_model(0, "NVIDIA L4");
        assert!(l4.has_nvenc && l4.nvenc_session_limit.is_none());
        let geforce = GpuInfo::from_model(0, "NVIDIA GeForce RTX 4090");
        assert_eq!(geforce.nvenc_session_limit, Some(8));
    }

    #[test]
    fn reads_model_from_procfs_text() {
        let text = "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:  123\nBus Location: 0000:01:00.0\n";
        assert_eq!(parse_procfs_model(text), Some("NVIDIA H100 80GB HBM3"));
    }

    #[test]
    fn auto_without_gpu_runs_on_cpu_and_nvidia_refuses() {
        let pool = GpuPool::new(AccelChoice::Auto, GpuInventory::default(), 4, 4).expect("pool");
        assert_eq!(pool.acquire().expect("lease").plan, StagePlan::CPU);
        assert_eq!(
            GpuPool::new(AccelChoice::Nvidia, GpuInventory::default(), 4, 4).err(),
            Some(AccelError::NoGpu)
        );
    }

    #[test]
    fn h100_decodes_and_scales_on_gpu_but_encodes_on_cpu() {
        let pool =
            GpuPool::new(AccelChoice::Auto, inventory(&["NVIDIA H100"]), 4, 4).expect("pool");
        let lease = pool.acquire().expect("lease");
        assert_eq!(
            lease.plan,
            StagePlan {
                decode: Device::Gpu(0),
                scale: Device::Gpu(0),
                encode: Device::Cpu
            }
        );
    }

    #[test]
    fn spreads_sessions_and_honours_limits() {
        let pool = GpuPool::new(
            AccelChoice::Nvidia,
            inventory(&["NVIDIA L4", "NVIDIA L4"]),
            2,
            4,
        )
        .expect("pool");
        let a = pool.acquire().expect("a");
        let b = pool.acquire().expect("b");
        assert_ne!(a.plan.gpu(), b.plan.gpu(), "least-loaded GPU first");
        let c = pool.acquire().expect("c");
        let d = pool.acquire().expect("d");
        assert_eq!(pool.acquire().err(), Some(AccelError::GpusFull));
        drop(c);
        assert!(pool.acquire().is_ok(), "a released slot is reused");
        drop((a, b, d));
        assert!(pool.load().iter().all(|(_, used, _)| *used <= 1));
    }

    #[test]
    fn geforce_nvenc_cap_limits_sessions_by_rendition_count() {
        // 8 NVENC sessions / 4 renditions = 2 transcode sessions on this card.
        let pool = GpuPool::new(
            AccelChoice::Auto,
            inventory(&["NVIDIA GeForce RTX 4080"]),
            16,
            4,
        )
        .expect("pool");
        let _a = pool.acquire().expect("a");
        let _b = pool.acquire().expect("b");
        // auto: the third session goes to the CPU rather than failing.
        assert_eq!(pool.acquire().expect("c").plan, StagePlan::CPU);
    }

    #[test]
    fn restrict_keeps_named_gpus() {
        let inv = inventory(&["NVIDIA L4", "NVIDIA L4", "NVIDIA L4"]).restrict(&[2]);
        assert_eq!(inv.gpus.len(), 1);
        assert_eq!(inv.gpus[0].index, 2);
    }

    #[test]
    fn stage_fallback_is_per_stage() {
        let mut plan = StagePlan {
            decode: Device::Gpu(1),
            scale: Device::Gpu(1),
            encode: Device::Gpu(1),
        };
        plan.fall_back(Stage::Encode);
        assert_eq!(plan.encode, Device::Cpu);
        assert_eq!(plan.decode, Device::Gpu(1));
        plan.fall_back(Stage::Decode);
        assert_eq!(plan, StagePlan::CPU);
        assert!(!plan.uses_gpu());
    }

    #[test]
    fn cpu_choice_ignores_gpus() {
        let pool = GpuPool::new(AccelChoice::Cpu, inventory(&["NVIDIA L4"]), 4, 4).expect("pool");
        assert_eq!(pool.acquire().expect("lease").plan, StagePlan::CPU);
    }
}
