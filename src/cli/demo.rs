//! `dsrctl emulate` and `dsrctl demo`.
use anyhow::Result;

use super::Outcome;
use super::args::{Cli, DemoArgs, EmulateArgs};

/// Serves the emulator until Ctrl-C.
pub async fn emulate(args: &EmulateArgs) -> Result<Outcome> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let emulator = crate::emulator::start(crate::emulator::Fixture::contoso(), addr).await?;
    println!("emulator listening on http://{}", emulator.addr);
    for tenant in ["contoso", "fabrikam"] {
        println!(
            "  {tenant}: {}/{{graph/v1.0,adt,dps,iotc/api}}",
            emulator.tenant_url(tenant)
        );
    }
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    Ok(Outcome::Ok)
}
/// Demo.
pub async fn demo(_cli: &Cli, _args: &DemoArgs, _color: bool) -> Result<Outcome> {
    anyhow::bail!("demo: not wired yet")
}
