"""The `colorgan` command. Thin: parse, call a library function, print."""
import click
from colorgan import __version__

@click.group()
@click.version_option(__version__, prog_name="colorgan")
def cli():
    """colorgan: colour colourless character art with a conditional GAN."""

def main():
    cli()
