//! `flywheel devices`: the compute adapters this machine offers, and what `--device auto` picks.

use std::process::ExitCode;

use miette::Result;

#[derive(clap::Args)]
pub struct DevicesArgs {
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn devices(args: DevicesArgs) -> Result<ExitCode> {
    let adapters = flywheel_kernels::list_adapters();
    if args.json {
        let list: Vec<_> = adapters
            .iter()
            .map(|a| serde_json::json!({"name": a.name, "backend": a.backend, "device_type": a.device_type, "driver": a.driver}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("adapters serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    if adapters.is_empty() {
        println!("no GPU adapter found (install a Vulkan, Metal or DirectX 12 driver; on Debian, `mesa-vulkan-drivers libvulkan1` gives the lavapipe software adapter)");
    }
    for adapter in &adapters {
        println!("{:<10} {:<8} {} ({})", adapter.device_type, adapter.backend, adapter.name, adapter.driver);
    }
    match flywheel_kernels::select_backend("auto") {
        Ok(backend) => println!("--device auto uses: {} ({})", backend.name(), backend.device_name()),
        Err(error) => println!("--device auto fails: {error}"),
    }
    println!("--device values: auto, cpu, gpu, software (lavapipe/llvmpipe), or part of an adapter name");
    Ok(ExitCode::SUCCESS)
}
