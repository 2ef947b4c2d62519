//! `shardline dashboard`: serves the dashboard over a stopped data directory, or prints where
//! the running `up` serves it.

use anyhow::{Result, bail};
use std::io::Write;
use std::sync::Arc;

use crate::cli::DashboardArgs;
use crate::config::Config;
use crate::control::server::ControlServer;
use crate::dashboard;
use crate::data::Data;
use crate::io::Io;
use crate::pipeline::Pipeline;

/// Run by the owner of the data directory: says where its dashboard is.
pub async fn run(data: &Data, io: &mut Io, _args: DashboardArgs) -> Result<i32> {
    match data.dashboard_url() {
        Some(url) => {
            writeln!(io.out, "{url}")?;
            writeln!(
                io.err,
                "the running shardline serves the dashboard of {} at {url}",
                data.config.data_dir.display()
            )?;
            Ok(0)
        }
        None => bail!(
            "the running shardline serves no dashboard (set [dashboard] enabled = true and \
             restart it)"
        ),
    }
}

/// Opens the stopped data directory, serves its dashboard (and the control API, so other
/// commands keep working) until Ctrl-C. With every port on AWS there is no directory to own:
/// the dashboard reads the AWS backends and no control socket is served.
pub async fn serve_stopped(config: Config, args: DashboardArgs) -> Result<i32> {
    let owns_dir = config.backend.uses_data_dir();
    if owns_dir {
        Data::local(config.clone()).require_existing()?;
    }
    let listen = args
        .listen
        .unwrap_or_else(|| config.dashboard.listen.clone());
    let (listener, addr) = dashboard::bind(&listen).await?;
    let url = format!("http://{addr}/");
    let pipeline = Pipeline::open(config).await?;
    let data = Arc::new(Data::owned(pipeline.clone(), None, Some(url.clone())));
    let control = if owns_dir {
        Some(ControlServer::start(data.clone())?)
    } else {
        None
    };
    let server = dashboard::serve(listener, data, None);
    println!(
        "shardline: dashboard of {} at {url}",
        pipeline.config.data_dir.display()
    );
    match &control {
        Some(control) => println!(
            "  (Ctrl-C to stop; other commands reach this data directory through {})",
            control.path().display()
        ),
        None => println!("  (Ctrl-C to stop)"),
    }
    let _ = tokio::signal::ctrl_c().await;
    server.abort();
    if let Some(control) = control {
        control.stop();
    }
    pipeline.close().await?;
    Ok(0)
}
